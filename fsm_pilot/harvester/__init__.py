"""Harvester mode: the files a pilot and Harvester exchange in the worker's access point.

Pilot 3's names and formats (docs/harvester.md has where each fact comes from):

- ``pandaJobData.out`` (or ``HPCJobs.json``): the job, placed by Harvester (:mod:`.jobrequest` reads it).
- ``worker_requestjob.json``: ``{"nJobs": 1}``, the pilot asking for a job (:mod:`.jobrequest`).
- ``worker_attributes.json``: each job update plus ``jobStatus``, when the pilot does not report
  to a server itself (:mod:`.workreport`); ``worker_heartbeat.json`` is refreshed with it.
- ``jobReport.json`` and ``event_status.dump.json``: with the final update, the payload's report
  and the outputs Harvester stages out (:mod:`.workreport`, :mod:`.stageout`).
- ``kill_worker``: the pilot is done (:mod:`.worker`).
"""
