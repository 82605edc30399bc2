"""A small PanDA-compatible dispatcher: jobs in SQLite, served over HTTP in both dialects.

Pilots (Pilot 3, fsm-pilot) take jobs with legacy ``getJob`` or v1 ``acquire_jobs`` and
report them with ``updateJob`` / ``update_job``; people submit jobs and set commands
through v1. Layout: ``httpserver`` (the HTTP/1.1 loop), ``app`` (routing), ``legacy`` and
``restv1`` (the two dialects), ``encoding`` (their wire formats), ``service`` and
``jobspec`` (queues, job definitions), ``jobstate`` (what an update may do), ``expiry``
(jobs handed out but never reported on), ``store`` (SQLite), ``server`` (start-up),
``client`` and ``cli`` (the commands).
"""
