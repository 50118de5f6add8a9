#!/usr/bin/python3
"""The result cache shared through a real Redis (issue #21), end to end: two vision-server
processes in front of one gemini-emulator, both with --result_cache_redis on one redis-server
(Debian's), driven with the `vision` CLI.

  - a Detect on gateway A is a miss and goes to Gemini; the same Detect on gateway B is a hit
    (Summary.cached, the original usage in cachedUsage, nothing billed) and Gemini saw one request;
  - bypass goes upstream and does not read the cache; a caller's result is not another's is
    covered by result_cache_integration_test (in-process);
  - Redis killed: calls still succeed (upstream, not cached) at once;
  - Redis back on the same port: the gateways reconnect by themselves and the cache serves again.

    result_cache_redis_test.py <gemini-emulator> <vision-server> <vision>
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from children import start, kill_all  # noqa: E402
import make_scene  # noqa: E402

API_KEY = "redis-e2e-gemini-key-7c21d0"
FAILED = []
PASSED = []


def check(name, ok, detail=""):
    (PASSED if ok else FAILED).append(name)
    print(("ok: %s" % name) if ok else ("FAIL: %s: %s" % (name, detail)),
          file=sys.stdout if ok else sys.stderr)


def free_port():
    # redis-server cannot listen on port 0: take one the kernel had free (a race with another
    # process is possible; start_redis then fails loudly instead of testing the wrong thing).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port, log):
    process, _ = start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no"], r"(Ready to accept connections)", log)
    return process


def detect(addr, image, *flags):
    result = subprocess.run([CLI, "detect", image, "--target", addr, "--output", "json", *flags],
                            capture_output=True, timeout=60)
    lines = [json.loads(l) for l in result.stdout.decode().split("\n") if l]
    summary = lines[-1].get("summary", {}) if lines else {}
    return result.returncode, summary, result.stderr.decode(errors="replace")


def upstream_calls():
    with urllib.request.urlopen(EMULATOR_URL + "/emulator/requests", timeout=10) as r:
        return sum(1 for q in json.load(r) if "GenerateContent" in q.get("target", ""))


def main():
    global CLI, EMULATOR_URL
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    emulator, server, CLI = (os.path.abspath(p) for p in sys.argv[1:])
    if shutil.which("redis-server") is None:
        print("SKIP: redis-server missing (run scripts/install-deps.sh)", file=sys.stderr)
        return 77
    tmp = tempfile.mkdtemp(prefix="vg-redis-")
    try:
        scene = os.path.join(tmp, "shapes.png")
        other = os.path.join(tmp, "rotated.png")
        subprocess.run([sys.executable, os.path.join(HERE, "lib", "make_scene.py"), scene],
                       check=True)
        subprocess.run([sys.executable, os.path.join(HERE, "lib", "make_scene.py"), other,
                        "--rotated"], check=True)
        port = free_port()
        redis = start_redis(port, os.path.join(tmp, "redis.log"))
        _, EMULATOR_URL = start([emulator, "--port", "0", "--api_key", API_KEY],
                                r"gemini-emulator listening on (http://\S+:\d+)",
                                os.path.join(tmp, "emulator.log"))
        addrs = []
        for name in ("a", "b"):
            _, p = start([server, "--port", "0", "--metrics_port", "-1", "--listen_host",
                          "127.0.0.1", "--gemini_base_url", EMULATOR_URL,
                          "--result_cache_redis", "127.0.0.1:%d" % port],
                         r"vision-server listening on \S*:(\d+)",
                         os.path.join(tmp, "server-%s.log" % name), env={"GEMINI_API_KEY": API_KEY})
            addrs.append("127.0.0.1:" + p)
        a, b = addrs

        code, first, err = detect(a, scene)
        check("gateway A: a miss, billed", code == 0 and not first.get("cached") and
              first.get("usage", {}).get("totalTokens", 0) > 0, "%d %s %s" % (code, first, err))
        code, second, err = detect(b, scene)
        check("gateway B: a hit from A's call through Redis, nothing billed",
              code == 0 and second.get("cached") is True and "usage" not in second and
              second.get("cachedUsage") == first.get("usage") and
              second.get("count") == first.get("count"), "%d %s %s" % (code, second, err))
        check("Gemini saw one request for the two calls", upstream_calls() == 1, upstream_calls())
        code, bypass, err = detect(b, scene, "--cache", "bypass")
        check("bypass goes upstream", code == 0 and not bypass.get("cached") and
              upstream_calls() == 2, "%d %s %s" % (code, bypass, err))

        redis.kill()
        redis.wait()
        started = time.monotonic()
        code, down, err = detect(b, other)
        elapsed = time.monotonic() - started
        check("Redis down: the call still succeeds, from Gemini", code == 0 and
              not down.get("cached") and down.get("count", 0) > 0, "%d %s %s" % (code, down, err))
        check("Redis down: no wait on the cache (call under 5 s)", elapsed < 5, elapsed)

        start_redis(port, os.path.join(tmp, "redis-2.log"))
        hit = {}
        # A question neither gateway answered before (another prompt): once gateway A stored its
        # answer in the new Redis (the empty database holds a key), B must be served from it.
        fresh = ("--prompt", "the coloured shapes")
        stored = False
        for _ in range(200):  # A reconnects with backoff (at most 2 s apart)
            detect(a, other, *fresh)
            keys = subprocess.run(["redis-cli", "-p", str(port), "dbsize"], capture_output=True,
                                  timeout=10).stdout.decode().strip()
            if keys not in ("", "0"):
                stored = True
                break
            time.sleep(0.05)
        check("Redis back: gateway A reconnects and stores again", stored, keys)
        code, hit, err = detect(b, other, *fresh)
        check("Redis back: the gateways reconnect and share results again",
              hit.get("cached") is True, "%s %s" % (hit, err))
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED or not PASSED else 0


if __name__ == "__main__":
    sys.exit(main())
