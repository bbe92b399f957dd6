# Runs the stock zeek-client unchanged, timing each request/response pair it makes, so
# that the benchmark measures a deploy from request to response rather than from Python
# start-up to exit. Timings go to stderr as "zmgmt-bench transact <Request> <ms>" lines;
# stdout stays the client's own JSON.
#
# Usage: python3 zeek-client-timed.py PATH-OF-ZEEK-CLIENT ARGS...
# PATH-OF-ZEEK-CLIENT is either the Python script itself (a pip install) or the shell
# wrapper of a source checkout, which keeps the script and its packages in lib/ beside it.

import os
import re
import runpy
import sys
import time

client = os.path.realpath(sys.argv[1])
args = sys.argv[2:]

script = client
lib = os.path.join(os.path.dirname(client), "lib")
if os.path.isfile(os.path.join(lib, "zeek-client.py")):
    sys.path.insert(0, lib)
    script = os.path.join(lib, "zeek-client.py")

try:
    import zeekclient.controller
except ImportError:
    # A client bundled with a Zeek install finds its package through a directory written
    # into the script at install time.
    with open(script, encoding="utf-8") as f:
        m = re.search(r'^ZEEK_PYTHON_DIR\b[^=]*=\s*"([^"]*)"', f.read(), re.M)
    if not m:
        raise
    sys.path.insert(0, m.group(1))
    import zeekclient.controller

_transact = zeekclient.controller.Controller.transact


def timed(self, request_type, response_type, *request_args, **kwargs):
    t0 = time.monotonic()
    try:
        return _transact(self, request_type, response_type, *request_args, **kwargs)
    finally:
        ms = (time.monotonic() - t0) * 1000
        sys.stderr.write(f"zmgmt-bench transact {request_type.__name__} {ms:.3f}\n")
        sys.stderr.flush()


zeekclient.controller.Controller.transact = timed
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
