#!/usr/bin/python3
"""The README's shell examples, run (issue #19): every ```sh (or bash, shell) block runs, in order, each in a
fresh `bash -euo pipefail`, against gemini-emulator and vision-server started on port 0, in a
scratch directory holding links to build/, node_modules/, docs/ and proto/. The documented
address (127.0.0.1:50051, localhost:50051) is rewritten to the server's, and VISION_TARGET is
set. A block preceded by `<!-- doctest: skip (reason) -->` is not run (the reason is required).
Also checked: the Set-up section holds exactly two one-line commands, and every image the README
shows exists.

    readme_doctest.py <gemini-emulator> <vision-server> <build-dir>
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BLOCK_TIMEOUT_S = 120
API_KEY = "readme-doctest-gemini-key-52c1"
SHELL = ("sh", "bash", "shell")
SKIP = re.compile(r"<!--\s*doctest:\s*skip\s*\((.+)\)\s*-->")


def blocks(text):
    """Yields (line number, info string, code, skip reason or None) for every fenced block."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = re.match(r"^```(\S*)\s*$", lines[i])
        if not match:
            i += 1
            continue
        start, info = i, match.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        skip = SKIP.search(lines[previous]) if previous >= 0 else None
        bare_skip = previous >= 0 and "doctest" in lines[previous] and not skip
        yield start + 1, info, "\n".join(lines[start + 1:j]), \
            (skip.group(1) if skip else ("" if bare_skip else None))
        i = j + 1


def start(args, pattern, log, env=None):
    """Starts a child logging to `log`; returns (process, capture 1 of the first match)."""
    out = open(log, "w")
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                               env=dict(os.environ, **(env or {})))
    with open(log) as f:
        seen = ""
        while True:
            seen += f.read()
            match = re.search(pattern, seen)
            if match:
                return process, match.group(1)
            if process.poll() is not None:
                raise RuntimeError("%s exited: %s" % (args[0], seen))
            try:
                process.wait(timeout=0.02)
            except subprocess.TimeoutExpired:
                pass


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    emulator, server, build = (os.path.abspath(p) for p in sys.argv[1:])
    for tool in [os.path.join(REPO, "node_modules/.bin/buf"), shutil.which("jq") or "jq"]:
        if not os.path.exists(tool):
            print("SKIP: %s missing (run scripts/install-deps.sh)" % tool, file=sys.stderr)
            return 77
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    failures = []

    # The rule of the house: exactly two set-up commands for a fresh Debian 12 machine.
    setup = readme.split("## Set-up (fresh Debian 12)", 1)[1].split("\n## ", 1)[0]
    setup = setup.split("\n### ", 1)[0]
    setup_blocks = [code for _, info, code, _ in blocks(setup) if info in SHELL]
    if len(setup_blocks) != 2 or any(len(b.strip().split("\n")) != 1 for b in setup_blocks):
        failures.append("Set-up must hold exactly two one-line sh blocks, has: %r" % setup_blocks)
    for image in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme):
        if not image.startswith("http") and not os.path.exists(os.path.join(REPO, image)):
            failures.append("the README shows %s, which does not exist" % image)

    work = tempfile.mkdtemp(prefix="vg-readme-")
    logs = tempfile.mkdtemp(prefix="vg-readme-logs-")
    children = []
    try:
        for name, target in [("build", build), ("node_modules", os.path.join(REPO, "node_modules")),
                             ("docs", os.path.join(REPO, "docs")),
                             ("proto", os.path.join(REPO, "proto"))]:
            os.symlink(target, os.path.join(work, name))
        process, url = start([emulator, "--port", "0", "--api_key", API_KEY],
                             r"gemini-emulator listening on (http://\S+:\d+)",
                             os.path.join(logs, "emulator.log"))
        children.append(process)
        process, port = start([server, "--port", "0", "--metrics_port", "0", "--listen_host",
                               "127.0.0.1", "--gemini_base_url", url],
                              r"vision-server listening on \S*:(\d+)",
                              os.path.join(logs, "server.log"), env={"GEMINI_API_KEY": API_KEY})
        children.append(process)
        address = "127.0.0.1:" + port
        env = dict(os.environ, VISION_TARGET=address, BUF_CACHE_DIR=os.path.join(logs, "buf"))
        env.pop("VISION_TOKEN", None)
        ran = skipped = 0
        for line, info, code, skip in blocks(readme):
            if info not in SHELL:
                continue
            if skip is not None:
                if not skip.strip():
                    failures.append("README line %d: a doctest skip needs a reason" % line)
                skipped += 1
                continue
            script = code.replace("127.0.0.1:50051", address).replace("localhost:50051", address)
            try:
                result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work,
                                        env=env, capture_output=True, text=True,
                                        timeout=BLOCK_TIMEOUT_S)
                code_out = result.returncode
                output = result.stdout + result.stderr
            except subprocess.TimeoutExpired as e:
                code_out, output = "timeout", str(e)
            ran += 1
            shown = "\n".join("    | " + l for l in output.strip().split("\n")[-25:])
            if code_out == 0:
                print("ok: README block at line %d" % line)
                if os.environ.get("DOCTEST_VERBOSE"):
                    print(shown)
            else:
                failures.append("README block at line %d exited %s:\n%s\n  output:\n%s" %
                                (line, code_out, code, shown))
        print("%d blocks ran, %d skipped (marked)" % (ran, skipped))
        if ran == 0:
            failures.append("no README block ran")
        drawn = os.path.join(work, "segment.png")
        if os.path.exists(drawn):
            # The checked-in example is what the README's command makes (same size; the pixels
            # depend on the fonts installed).
            with open(drawn, "rb") as a, open(os.path.join(REPO, "docs/shapes-segment.png"),
                                               "rb") as b:
                if a.read()[16:24] != b.read()[16:24]:
                    failures.append("docs/shapes-segment.png is not the size segment --draw makes")
    finally:
        for process in children:
            process.kill()
            process.wait()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
    for failure in failures:
        print("FAIL: " + failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
