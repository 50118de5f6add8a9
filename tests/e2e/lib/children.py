"""Child processes of the Python e2e tests: started on port 0, their address read from their log,
all killed at the end (kill_all)."""
import os
import re
import subprocess

CHILDREN = []


def start(args, pattern, log, env=None):
    """Starts a child writing to `log`; returns (process, first capture of `pattern`) once a line
    of the log matches (tail of the file, no sleeps as synchronisation beyond polling its end)."""
    out = open(log, "w")
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                               env=dict(os.environ, **(env or {})))
    CHILDREN.append(process)
    with open(log) as f:
        buffered = ""
        while True:
            chunk = f.read()
            if chunk:
                buffered += chunk
                match = re.search(pattern, buffered)
                if match:
                    return process, match.group(1)
                continue
            if process.poll() is not None:
                raise RuntimeError("%s exited: %s" % (args[0], buffered))
            # The child has not printed its line yet: wait for it on the process itself.
            try:
                process.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                pass


def kill_all():
    for process in CHILDREN:
        if process.poll() is None:
            process.kill()
            process.wait()
