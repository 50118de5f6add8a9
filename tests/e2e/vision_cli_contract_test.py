#!/usr/bin/python3
"""The `vision` CLI's contract (issue #19), end to end against vision-server in front of
gemini-emulator, every process on port 0:

  - usage errors exit 2; --help (global and per command) and --version exit 0;
  - --output json: every line parses, in the order ImageInfo, objects, Summary, each printed as
    its message arrives;
  - exit codes 64 + the gRPC code: NOT_FOUND -> 69 with its ErrorInfo reason and request id,
    RESOURCE_EXHAUSTED -> 72 with Gemini's RetryInfo delay printed, INVALID_ARGUMENT -> 67
    with its field violations;
  - --draw: a PNG of the upright size (the input is stored rotated, EXIF orientation 6) whose
    box outlines differ from the input, and whose mask overlay changes every mask pixel;
  - paths: ./files/x.png is local even when it starts with files/, - reads stdin;
  - upload's progress bar on a terminal only; --timeout_s bounds a call (DEADLINE_EXCEEDED, 68);
  - batch jobs (#20): create from two images (one stored rotated), get until SUCCEEDED, list,
    results --output json as one object per item with the online Detect's messages in pixel
    geometry of each upright image, cancel of an ended job (FAILED_PRECONDITION, 73), delete,
    then get is NOT_FOUND (69);
  - TLS + bearer token (--ca_file, --token_file, VISION_TOKEN, --authority) against a TLS server
    with caller tokens; mTLS with --cert_file/--key_file.

    vision_cli_contract_test.py <gemini-emulator> <vision-server> <vision>
"""
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from pngio import read_png, rgb  # noqa: E402
from children import start, kill_all  # noqa: E402
import make_scene  # noqa: E402

TIMEOUT_S = 60
# Long enough that the gateway's key redaction (service/server/leak_filter) touches no message.
API_KEY = "cli-e2e-gemini-key-3f9a61"
FAILED = []
PASSED = []


def check(name, ok, detail=""):
    if ok:
        PASSED.append(name)
        print("ok: " + name)
    else:
        FAILED.append(name)
        print("FAIL: %s: %s" % (name, detail), file=sys.stderr)


def run(*args, stdin=None, env=None):
    """Runs the CLI; returns (exit code, stdout, stderr)."""
    result = subprocess.run([CLI, *args], input=stdin, capture_output=True, timeout=TIMEOUT_S,
                            env=dict(os.environ, **(env or {})))
    return result.returncode, result.stdout.decode(errors="replace"), \
        result.stderr.decode(errors="replace")


def emulator_post(path, body):
    request = urllib.request.Request(EMULATOR_URL + path, data=json.dumps(body).encode(),
                                     method="POST", headers={"content-type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def json_lines(stdout):
    lines = [line for line in stdout.split("\n") if line]
    return [json.loads(line) for line in lines]


def kinds(messages):
    return [next(iter(m)) for m in messages]


def test_usage():
    for args in [[], ["detect"], ["frobnicate"], ["detect", SCENE, "--bogus"],
                 ["caption", SCENE, "--draw", "x.png"], ["detect", SCENE, "--output", "yaml"],
                 ["detect", SCENE, "--timeout_s"], ["files", "get"], ["upload", "-"],
                 ["detect", "files/abc", "--draw", "x.png", "--target", ADDR],
                 ["caption", SCENE, "--cert_file", "c.pem"]]:
        code, _, err = run(*args)
        check("usage error exits 2: vision %s" % " ".join(args), code == 2, "%d %s" % (code, err))
    code, out, _ = run("--help")
    check("--help lists commands and global flags", code == 0 and all(
        s in out for s in ["detect", "segment", "health", "--target", "--ca_file", "--token_file",
                           "--output", "--authority"]), out)
    code, out, _ = run("detect", "--help")
    check("detect --help: its flags and an example", code == 0 and "--draw" in out and
          "--max_objects" in out and "example:" in out and "--masks_dir" not in out, out)
    code, out, _ = run("upload", "--help")
    check("upload --help: no deadline by default", code == 0 and "none by default" in out, out)
    code, out, _ = run("--version")
    check("--version", code == 0 and re.match(r"vision \d+\.\d+", out), out)


def test_json():
    for command, object_kind in [("detect", "detection"), ("segment", "mask")]:
        code, out, err = run(command, SCENE, "--target", ADDR, "--output", "json")
        try:
            messages = json_lines(out)
        except ValueError as e:
            check("%s --output json parses" % command, False, "%s: %s" % (e, out))
            continue
        order = kinds(messages)
        check("%s --output json: ImageInfo, 3 objects, Summary" % command,
              code == 0 and order == ["imageInfo"] + [object_kind] * 3 + ["summary"],
              "%d %s %s" % (code, order, err))
    code, out, err = run("caption", SCENE, "--target", ADDR, "--output", "json")
    try:
        messages = json_lines(out)
        check("caption --output json: every message a line, the last with finishReason",
              code == 0 and len(messages) >= 1 and messages[-1].get("finishReason") == "STOP" and
              "red" in "".join(m.get("text", "") for m in messages), out)
    except ValueError as e:
        check("caption --output json parses", False, "%s: %s" % (e, out))
    code, out, _ = run("health", "--target", ADDR, "--output", "json")
    check("health --output json", code == 0 and json.loads(out) == {"status": "SERVING"}, out)


def test_json_is_live():
    """Each JSON line is written and flushed as its message arrives: the first line of a Caption
    is read while the stream's last event is still held by the emulator."""
    def event(text, finish=None):
        candidate = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "modelVersion": "gemini-3-flash-preview",
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3,
                                  "totalTokenCount": 13}}
    emulator_post("/emulator/script", {"sse_events": [event("A red"), event(" square", "STOP")],
                                       "hold_last_write": "cli-live"})
    process = subprocess.Popen([CLI, "caption", SCENE, "--target", ADDR, "--output", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Bounded: a CLI that buffers its output would print nothing until the held event goes.
        ready, _, _ = select.select([process.stdout], [], [], 20)
        first = process.stdout.readline() if ready else ""
        held = process.poll() is None
        emulator_post("/emulator/release", {"gate": "cli-live"})
        rest, err = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    check("--output json: the first message is printed while the stream is still open",
          held and json.loads(first) == {"text": "A red"} and process.returncode == 0 and
          json.loads(rest.strip().split("\n")[-1]).get("finishReason") == "STOP",
          "%r %r %r %s" % (held, first, rest, err))


def test_exit_codes():
    code, _, err = run("files", "get", "files/no-such-file", "--target", ADDR)
    check("NOT_FOUND exits 69 with code name, reason and request id",
          code == 69 and "NOT_FOUND (gRPC code 5)" in err and "reason: FILE_NOT_FOUND" in err and
          re.search(r"request id: \S+", err), "%d %s" % (code, err))
    emulator_post("/emulator/script", {"status": 429, "body": {"error": {
        "code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                     "retryDelay": "3600s"}]}}})
    code, _, err = run("caption", SCENE, "--target", ADDR)
    check("RESOURCE_EXHAUSTED exits 72 with its RetryInfo delay",
          code == 72 and "RESOURCE_EXHAUSTED (gRPC code 8)" in err and
          "retry after: 1h" in err and "reason: UPSTREAM_RATE_LIMITED" in err,
          "%d %s" % (code, err))
    emulator_post("/emulator/script", {"status": 400, "body": {"error": {
        "code": 400, "message": "Request contains an invalid argument.",
        "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
            {"field": "generation_config.temperature", "description": "must be at most 2"}]}]}}})
    code, _, err = run("caption", SCENE, "--target", ADDR)
    check("INVALID_ARGUMENT exits 67 with its field violations",
          code == 67 and "reason: UPSTREAM_INVALID_ARGUMENT" in err and
          re.search(r"field violation: \S*temperature\S*: must be at most 2", err),
          "%d %s" % (code, err))
    code, _, err = run("health", "--target", ADDR, "--service", "no.such.Service")
    check("health of an unknown service exits 69", code == 69, "%d %s" % (code, err))
    code, _, err = run("detect", os.path.join(TMP, "missing.png"), "--target", ADDR)
    check("a missing local file exits 1", code == 1 and "cannot open" in err, "%d %s" % (code, err))


def changed(a, b):
    return any(abs(x - y) > 8 for x, y in zip(a, b))


def test_draw_detect():
    out_png = os.path.join(TMP, "detect.png")
    code, out, err = run("detect", ROTATED, "--target", ADDR, "--output", "json", "--draw", out_png)
    if code != 0:
        check("detect --draw", False, "%d %s" % (code, err))
        return
    boxes = [m["detection"]["box"] for m in json_lines(out) if "detection" in m]
    width, height, channels, rows = read_png(out_png)
    check("detect --draw: the upright size (320x200 from a 200x320 EXIF-6 PNG)",
          (width, height) == (make_scene.WIDTH, make_scene.HEIGHT), "%dx%d" % (width, height))
    check("detect --draw: 3 boxes", len(boxes) == 3, boxes)
    for box in boxes:
        x0, y0, x1, y1 = box.get("xMin", 0), box.get("yMin", 0), box["xMax"], box["yMax"]
        # Every pixel of the box's edge (its outline, inside the box) differs from the input.
        edge = [(x, y0) for x in range(x0, x1)] + [(x, y1 - 1) for x in range(x0, x1)] + \
               [(x0, y) for y in range(y0, y1)] + [(x1 - 1, y) for y in range(y0, y1)]
        same = [p for p in edge if not changed(rgb(rows, channels, *p), make_scene.pixel(*p))]
        check("detect --draw: box %s outlined (%d edge pixels, %d unchanged)" %
              (box, len(edge), len(same)), not same, same[:5])


def decode_rle(counts, height, width):
    """COCO compressed RLE (column-major) -> set of (x, y) inside."""
    values, pos = [], 0
    while pos < len(counts):
        x, k, more = 0, 0, True
        while more:
            c = ord(counts[pos]) - 48
            x |= (c & 0x1f) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(values) > 2:
            x += values[-2]
        values.append(x)
    inside, index, value = set(), 0, 0
    for run_length in values:
        if value:
            for i in range(index, index + run_length):
                inside.add((i // height, i % height))
        index += run_length
        value ^= 1
    return inside


def test_draw_segment():
    out_png = os.path.join(TMP, "segment.png")
    code, out, err = run("segment", ROTATED, "--target", ADDR, "--output", "json",
                         "--draw", out_png)
    if code != 0:
        check("segment --draw", False, "%d %s" % (code, err))
        return
    masks = [m["mask"] for m in json_lines(out) if "mask" in m]
    width, height, channels, rows = read_png(out_png)
    check("segment --draw: the upright size", (width, height) == (320, 200),
          "%dx%d" % (width, height))
    check("segment --draw: 3 masks", len(masks) == 3, len(masks))
    for mask in masks:
        h, w = mask["rle"]["size"]
        inside = decode_rle(mask["rle"]["counts"], h, w)
        same = [p for p in inside if not changed(rgb(rows, channels, *p), make_scene.pixel(*p))]
        check("segment --draw: the %s mask's %d pixels are all overlaid (%d unchanged)" %
              (mask["label"], len(inside), len(same)),
              len(inside) == int(mask["area"]) > 0 and not same, same[:5])


def test_paths():
    local = os.path.join(TMP, "files")
    os.makedirs(local, exist_ok=True)
    shutil.copy(SCENE, os.path.join(local, "x.png"))
    for path in ["files/x.png", "./files/x.png"]:
        result = subprocess.run([CLI, "detect", path, "--target", ADDR],
                                capture_output=True, text=True, cwd=TMP, timeout=TIMEOUT_S)
        check("%s (a local file) is sent as a local image" % path,
              result.returncode == 0 and "3 objects" in result.stdout, result.stderr)
    result = subprocess.run([CLI, "detect", "files/abc", "--target", ADDR],
                            capture_output=True, text=True, cwd=TMP, timeout=TIMEOUT_S)
    check("files/abc (no such local file) is a Gemini file: FILE_NOT_FOUND, 69",
          result.returncode == 69 and "FILE_NOT_FOUND" in result.stderr, result.stderr)
    with open(SCENE, "rb") as f:
        code, out, err = run("detect", "-", "--target", ADDR, stdin=f.read())
    check("- reads stdin", code == 0 and "3 objects" in out, err)


def test_upload_progress_and_deadlines():
    # Piped: no progress bar, just the File.
    code, out, err = run("upload", SCENE, "--target", ADDR)
    check("upload piped: the File, no progress bar",
          code == 0 and out.startswith("files/") and "MiB" not in err, "%d %s %s" % (code, out, err))
    # On a terminal (a pseudo-terminal as stderr): bytes, rate and ETA.
    primary, secondary = pty.openpty()
    result = subprocess.run([CLI, "upload", ROTATED, "--target", ADDR], stdout=subprocess.PIPE,
                            stderr=secondary, timeout=TIMEOUT_S)
    os.close(secondary)
    shown = b""
    while True:
        try:
            piece = os.read(primary, 4096)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not piece:
            break
        shown += piece
    os.close(primary)
    shown = shown.decode(errors="replace")
    check("upload on a terminal: a progress bar with bytes, rate and ETA",
          result.returncode == 0 and re.search(r"upload +[0-9.]+ / [0-9.]+ MiB +100%", shown) and
          "MiB/s" in shown and "ETA" in shown, "%d %r" % (result.returncode, shown))
    # A command's deadline: --timeout_s 1 against an answer that takes 3 s: DEADLINE_EXCEEDED.
    emulator_post("/emulator/config", {"response_delay_ms": 3000})
    try:
        code, _, err = run("caption", SCENE, "--target", ADDR, "--timeout_s", "1")
    finally:
        emulator_post("/emulator/config", {"response_delay_ms": 0})
    check("--timeout_s 1: DEADLINE_EXCEEDED, exit 68", code == 68 and "DEADLINE_EXCEEDED" in err,
          "%d %s" % (code, err))


def make_pki(d):
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-keyout", d + "/ca.key", "-out", d + "/ca.crt", "-subj", "/CN=cli-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, ext in [("server", "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:gateway.test"),
                      ("client", "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:svc-a")]:
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", "%s/%s.key" % (d, name), "-out", "%s/%s.csr" % (d, name),
                "-subj", "/CN=" + name)
        with open("%s/%s.ext" % (d, name), "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + ext + "\n")
        openssl("x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", d + "/ca.crt",
                "-CAkey", d + "/ca.key", "-CAcreateserial", "-days", "2",
                "-out", "%s/%s.crt" % (d, name), "-extfile", "%s/%s.ext" % (d, name))


def test_tls():
    d = os.path.join(TMP, "pki")
    os.makedirs(d)
    make_pki(d)
    token = "cli-e2e-token-6b1f0c9d2e7a"
    with open(os.path.join(TMP, "tokens"), "w") as f:
        f.write("alice %s\n" % token)
    with open(os.path.join(TMP, "token"), "w") as f:
        f.write(token + "\n")
    _, port = start([SERVER, "--port", "0", "--metrics_port", "0", "--listen_host", "127.0.0.1",
                     "--gemini_base_url", EMULATOR_URL, "--tls_cert_file", d + "/server.crt",
                     "--tls_key_file", d + "/server.key",
                     "--auth_tokens_file", os.path.join(TMP, "tokens")],
                    r"vision-server listening on \S*:(\d+)", os.path.join(TMP, "tls-server.log"),
                    env={"GEMINI_API_KEY": API_KEY})
    target = "127.0.0.1:" + port
    tls = ["--target", target, "--ca_file", d + "/ca.crt", "--authority", "gateway.test"]
    code, out, err = run("caption", SCENE, *tls, "--token_file", os.path.join(TMP, "token"))
    check("TLS (--ca_file, --authority) + --token_file captions", code == 0 and "red" in out,
          "%d %s" % (code, err))
    code, out, err = run("detect", SCENE, *tls, env={"VISION_TOKEN": token})
    check("TLS + VISION_TOKEN detects", code == 0 and "3 objects" in out, "%d %s" % (code, err))
    code, out, err = run("caption", SCENE, *tls)
    check("TLS without a token: UNAUTHENTICATED, exit 80",
          code == 80 and "UNAUTHENTICATED" in err, "%d %s" % (code, err))
    code, out, err = run("caption", SCENE, "--target", target, "--ca_file", d + "/ca.crt",
                         "--token_file", os.path.join(TMP, "token"))
    check("TLS without --authority (the certificate names gateway.test): UNAVAILABLE, exit 78",
          code == 78 and "UNAVAILABLE" in err, "%d %s" % (code, err))
    code, out, err = run("health", "--target", target, "--tls", "--authority", "gateway.test")
    check("--tls trusts only the system roots: UNAVAILABLE, exit 78", code == 78,
          "%d %s" % (code, err))
    code, out, err = run("caption", SCENE, "--target", target, "--token_file",
                         os.path.join(TMP, "token"))
    check("plaintext to a TLS server: UNAVAILABLE, exit 78", code == 78, "%d %s" % (code, err))
    # mTLS: the caller is named by its client certificate.
    _, mport = start([SERVER, "--port", "0", "--metrics_port", "0", "--listen_host", "127.0.0.1",
                      "--gemini_base_url", EMULATOR_URL, "--tls_cert_file", d + "/server.crt",
                      "--tls_key_file", d + "/server.key", "--tls_client_ca_file", d + "/ca.crt",
                      "--auth_client_cert"],
                     r"vision-server listening on \S*:(\d+)", os.path.join(TMP, "mtls-server.log"),
                     env={"GEMINI_API_KEY": API_KEY})
    mtls = ["--target", "127.0.0.1:" + mport, "--ca_file", d + "/ca.crt",
            "--authority", "gateway.test"]
    code, out, err = run("count-tokens", SCENE, *mtls, "--cert_file", d + "/client.crt",
                         "--key_file", d + "/client.key")
    check("mTLS with --cert_file/--key_file", code == 0 and "total_tokens" in out,
          "%d %s" % (code, err))
    code, out, err = run("count-tokens", SCENE, *mtls)
    check("mTLS without a client certificate fails (exit 78)", code == 78, "%d %s" % (code, err))


def test_batch():
    code, out, err = run("batch", "create", SCENE, ROTATED, "--task", "detect", "--target", ADDR,
                         "--output", "json")
    check("batch create exits 0 with the job", code == 0 and '"name"' in out, "%d %s %s" % (code, out, err))
    name = json.loads(out)["name"]
    state = ""
    for _ in range(500):  # the emulator ends a job after --batch_processing_ms (100 ms)
        code, out, err = run("batch", "get", name, "--target", ADDR, "--output", "json")
        state = json.loads(out).get("state", "") if code == 0 else err
        if state not in ("STATE_PENDING", "STATE_RUNNING"):
            break
    check("batch get: the job ends SUCCEEDED", state == "STATE_SUCCEEDED", state)
    code, out, err = run("batch", "list", "--target", ADDR, "--output", "json")
    check("batch list shows the job", code == 0 and name in out, "%d %s %s" % (code, out, err))
    code, out, err = run("batch", "results", name, "--target", ADDR, "--output", "json")
    items = json_lines(out) if code == 0 else []
    check("batch results --output json: one object per item, keyed by path",
          [i.get("key") for i in items] == [SCENE, ROTATED], "%d %s %s" % (code, out, err))
    for item in items:
        results = [r["detect"] for r in item["results"]]
        info = results[0].get("imageInfo", {})
        boxes = [r["detection"]["box"] for r in results if "detection" in r]
        check("batch item %s: ImageInfo of the upright image, 3 detections, Summary"
              % os.path.basename(item["key"]),
              (info.get("width"), info.get("height")) == (make_scene.WIDTH, make_scene.HEIGHT) and
              kinds(results) == ["imageInfo"] + ["detection"] * 3 + ["summary"], item)
        check("batch item %s: the rectangle's pixel box" % os.path.basename(item["key"]),
              any(abs(b.get("xMin", 0) - 20) <= 1 and abs(b.get("yMin", 0) - 30) <= 1 and
                  abs(b["xMax"] - 100) <= 1 and abs(b["yMax"] - 110) <= 1 for b in boxes), boxes)
    # The batch metrics (#20): one job of two items created, two result lines read, none failed.
    with open(os.path.join(TMP, "server.log")) as f:
        metrics_url = re.search(r"metrics on (http://\S+/metrics)", f.read()).group(1)
    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        exposition = r.read().decode()
    counts = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^vision_gateway_batch_events_total\{event="(\w+)",model="gemini-3-flash-preview",'
        r'task="detect"\} (\S+)$', exposition, re.M)}
    check("batch metrics: job_created 1, item 2, result_line 2, no item_failed",
          counts == {"job_created": 1, "item": 2, "result_line": 2}, counts)
    code, _, err = run("batch", "cancel", name, "--target", ADDR)
    check("batch cancel of an ended job: FAILED_PRECONDITION (73)", code == 73, "%d %s" % (code, err))
    code, _, err = run("batch", "delete", name, "--target", ADDR)
    check("batch delete exits 0", code == 0, "%d %s" % (code, err))
    code, _, err = run("batch", "get", name, "--target", ADDR)
    check("batch get after delete: NOT_FOUND (69)", code == 69, "%d %s" % (code, err))


def main():
    global CLI, SERVER, EMULATOR_URL, ADDR, TMP, SCENE, ROTATED
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    emulator, SERVER, CLI = (os.path.abspath(p) for p in sys.argv[1:])
    if shutil.which("openssl") is None:
        print("SKIP: openssl missing (run scripts/install-deps.sh)", file=sys.stderr)
        return 77
    TMP = tempfile.mkdtemp(prefix="vg-cli-")
    try:
        SCENE = os.path.join(TMP, "shapes.png")
        ROTATED = os.path.join(TMP, "rotated.png")
        subprocess.run([sys.executable, os.path.join(HERE, "lib", "make_scene.py"), SCENE],
                       check=True)
        subprocess.run([sys.executable, os.path.join(HERE, "lib", "make_scene.py"), ROTATED,
                        "--rotated"], check=True)
        _, EMULATOR_URL = start([emulator, "--port", "0", "--api_key", API_KEY],
                                r"gemini-emulator listening on (http://\S+:\d+)",
                                os.path.join(TMP, "emulator.log"))
        _, port = start([SERVER, "--port", "0", "--metrics_port", "0", "--listen_host",
                         "127.0.0.1", "--gemini_base_url", EMULATOR_URL],
                        r"vision-server listening on \S*:(\d+)", os.path.join(TMP, "server.log"),
                        env={"GEMINI_API_KEY": API_KEY})
        ADDR = "127.0.0.1:" + port
        for test in [test_usage, test_json, test_json_is_live, test_exit_codes, test_draw_detect, test_draw_segment,
                     test_paths, test_upload_progress_and_deadlines, test_batch, test_tls]:
            try:
                test()
            except Exception as e:  # one broken section must not hide the others
                check(test.__name__, False, repr(e))
    finally:
        kill_all()
        shutil.rmtree(TMP, ignore_errors=True)
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED or not PASSED else 0


if __name__ == "__main__":
    sys.exit(main())
