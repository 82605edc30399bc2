"""Storage: checksums, deterministic replica paths, endpoints, stage-out, log tarball."""

from fsm_pilot.storage.checksum import adler32_file, md5_file, size_and_adler32
from fsm_pilot.storage.endpoints import Endpoint, read_endpoint, write_endpoint
from fsm_pilot.storage.local import StagedFile, put_file
from fsm_pilot.storage.logtar import make_log_tarball, tarball_root
from fsm_pilot.storage.paths import check_lfn, check_scope, deterministic_path

__all__ = [
    "Endpoint",
    "StagedFile",
    "adler32_file",
    "check_lfn",
    "check_scope",
    "deterministic_path",
    "make_log_tarball",
    "md5_file",
    "put_file",
    "read_endpoint",
    "size_and_adler32",
    "tarball_root",
    "write_endpoint",
]
