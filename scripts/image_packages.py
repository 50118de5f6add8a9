#!/usr/bin/python3
"""The runtime image's Debian packages, derived from what the binaries really link (issue #24).

  image_packages.py derive BINARY...
      Prints, one per line, the Debian packages that provide every shared library the binaries
      load: what ldd resolves for each binary and, when a binary links libvips, for libvips'
      loader modules (which libvips dlopens, so ldd of the binary never shows them). The
      Containerfile's binaries stage writes this list and the runtime stage installs it.

  image_packages.py check [--containerfile F] BINARY...
      The fast check run by ctest (seconds, no image build): reads the runtime stage of the
      Containerfile, works out the exact set of packages its apt-get would install on an empty
      Debian 12 (apt's own resolver, simulated against an empty dpkg status), and fails unless
      every library the freshly built binaries need (as `derive` finds them) is a file of a
      package in that set, no -dev package or compiler is in it, and every binary the images
      ship was checked.

Needs a Debian system with the binaries' libraries installed (dpkg's database maps a library to
its package) and apt's package lists (`apt-get update`, which scripts/install-deps.sh runs).
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

DPKG_INFO = "/var/lib/dpkg/info"
# Loader modules libvips dlopens at start (vips_init): not visible to ldd of the binary.
VIPS_MODULE_GLOB = "/usr/lib/*/vips-modules-*/*.so"
# Names that must never be in the runtime image.
FORBIDDEN = re.compile(r"(-dev$|^(gcc|g\+\+|cpp|clang|cmake|make|ninja-build)(-[0-9.]+)?$)")


def fail(message):
    print(f"image_packages: {message}", file=sys.stderr)
    sys.exit(1)


def usr_variants(path):
    """Debian 12 has merged /usr: dpkg may list a library under /lib or /usr/lib."""
    variants = [path, os.path.realpath(path)]
    for p in list(variants):
        if p.startswith("/usr/lib/") or p.startswith("/usr/lib64/"):
            variants.append(p[len("/usr"):])
        elif p.startswith("/lib/") or p.startswith("/lib64/"):
            variants.append("/usr" + p)
    return variants


class FileOwners:
    """Maps a path to the installed package that ships it, from dpkg's file lists."""

    def __init__(self):
        self.owner = {}
        for listing in glob.glob(os.path.join(DPKG_INFO, "*.list")):
            package = os.path.basename(listing)[: -len(".list")].split(":")[0]
            with open(listing, encoding="utf-8", errors="replace") as f:
                for line in f:
                    self.owner.setdefault(line.rstrip("\n"), package)
        if not self.owner:
            fail(f"no dpkg file lists in {DPKG_INFO}: not a Debian system?")

    def package_of(self, path):
        for candidate in usr_variants(path):
            if candidate in self.owner:
                return self.owner[candidate]
        return None


def shared_libraries(elf):
    """The absolute paths ldd resolves for one ELF file (and the dynamic loader)."""
    result = subprocess.run(["ldd", elf], capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"ldd {elf} failed: {result.stderr.strip() or result.stdout.strip()}")
    libraries, missing = [], []
    for line in result.stdout.splitlines():
        line = line.strip()
        if "=> not found" in line:
            missing.append(line.split()[0])
        elif "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
            if target.startswith("/"):
                libraries.append(target)
        elif line.startswith("/"):
            libraries.append(line.split()[0])
    if missing:
        fail(f"{elf} needs libraries this machine does not have: {', '.join(missing)}")
    return libraries


def needed_libraries(binaries, owners):
    """{library path: (package, needed by)} for the binaries and any modules they load."""
    needed = {}
    queue = [(b, b) for b in binaries]
    modules_added = False
    while queue:
        elf, why = queue.pop(0)
        if not os.path.isfile(elf):
            fail(f"no such file: {elf}")
        for library in shared_libraries(elf):
            if library in needed:
                continue
            package = owners.package_of(library)
            if package is None:
                fail(f"{library} (needed by {why}) belongs to no Debian package: a library "
                     "installed by hand cannot be put in the image; install it with apt")
            needed[library] = (package, why)
            if not modules_added and os.path.basename(library).startswith("libvips.so"):
                modules_added = True
                for module in sorted(glob.glob(VIPS_MODULE_GLOB)):
                    package = owners.package_of(module)
                    if package is None:
                        fail(f"{module} belongs to no Debian package")
                    needed[module] = (package, "libvips (loader module)")
                    queue.append((module, f"libvips module {os.path.basename(module)}"))
    return needed


def derive(needed):
    """The packages of `needed` (needed_libraries), refusing build-only ones."""
    packages = sorted({package for package, _ in needed.values()})
    bad = [p for p in packages if FORBIDDEN.search(p)]
    if bad:
        fail(f"the binaries load libraries from build-only packages: {', '.join(bad)}")
    return packages


def stages(containerfile_text):
    """{stage name: [instruction, ...]} with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in containerfile_text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not current:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    result, name = {}, None
    for line in lines:
        m = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?$", line, re.IGNORECASE)
        if m:
            name = (m.group(1) or f"stage{len(result)}").lower()
            result[name] = []
        elif name is not None:
            result[name].append(line)
    return result


def runtime_install_set(stage_lines):
    """(literal packages, derived-list file or None) of the runtime stage's apt-get install."""
    literal, derived_file, seen_install = [], None, False
    for line in stage_lines:
        if not line.upper().startswith("RUN "):
            continue
        for command in re.split(r"&&|;", line[4:]):
            words = command.split()
            if "apt-get" not in words or "install" not in words:
                continue
            seen_install = True
            rest = command.split("install", 1)[1]
            for m in re.finditer(r"\$\(\s*cat\s+(\S+?)\s*\)|(\S+)", rest):
                if m.group(1):
                    derived_file = m.group(1)
                elif not m.group(2).startswith("-"):
                    literal.append(m.group(2))
    if not seen_install:
        fail("the runtime stage of the Containerfile runs no apt-get install")
    return literal, derived_file


def simulate_install(packages):
    """Every package apt would install for `packages` on a system with nothing installed."""
    with tempfile.NamedTemporaryFile() as empty_status:
        result = subprocess.run(
            ["apt-get", "-s", "-q", "-o", f"Dir::State::status={empty_status.name}",
             "-o", "Debug::NoLocking=1", "install", "--no-install-recommends", *packages],
            capture_output=True, text=True)
    if result.returncode != 0:
        fail("apt-get could not resolve the runtime stage's packages "
             f"({' '.join(packages)}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}\n"
             "(no package lists? run apt-get update, as scripts/install-deps.sh does)")
    return {m.group(1) for m in re.finditer(r"^Inst (\S+)", result.stdout, re.MULTILINE)}


def check(containerfile, binaries):
    with open(containerfile, encoding="utf-8") as f:
        all_stages = stages(f.read())
    if "runtime" not in all_stages:
        fail(f"{containerfile} has no stage named runtime")
    shipped = set()
    for lines in all_stages.values():
        for line in lines:
            m = re.match(r"COPY\s+--from=\S+\s+/out/(\S+)\s+/usr/local/bin/", line, re.IGNORECASE)
            if m:
                shipped.add(m.group(1))
    checked = {os.path.basename(b) for b in binaries}
    if shipped - checked:
        fail(f"the images ship {', '.join(sorted(shipped - checked))}, which this check was not "
             "given: pass every shipped binary")

    literal, derived_file = runtime_install_set(all_stages["runtime"])
    install = list(literal)
    derived = []
    if derived_file:
        writers = [line for lines in all_stages.values() for line in lines
                   if "image_packages.py derive" in line and os.path.basename(derived_file) in line]
        if not writers:
            fail(f"the runtime stage installs $(cat {derived_file}), but no stage writes it with "
                 "image_packages.py derive")
        for line in writers:
            unnamed = [b for b in sorted(shipped) if f"/out/{b}" not in line]
            if unnamed:
                fail(f"the stage writing {derived_file} derives it without {', '.join(unnamed)}")
    needed = needed_libraries(binaries, FileOwners())
    if derived_file:
        derived = derive(needed)
        install += derived
    installed = simulate_install(install)

    missing = {}
    for library, (package, why) in sorted(needed.items()):
        if package not in installed:
            missing.setdefault(package, []).append(f"{os.path.basename(library)} ({why})")
    forbidden = sorted(p for p in installed if FORBIDDEN.search(p))
    source = (f"{' '.join(literal)} + {len(derived)} packages derived from the binaries "
              f"(written to {derived_file} by the binaries stage)" if derived_file
              else ' '.join(literal))
    if missing:
        print(f"FAIL: the runtime image ({containerfile}: apt-get install {source}) would lack "
              "libraries the binaries load:", file=sys.stderr)
        for package, libraries in sorted(missing.items()):
            print(f"  {package}: {', '.join(libraries)}", file=sys.stderr)
    if forbidden:
        print(f"FAIL: the runtime image would contain build-only packages: {' '.join(forbidden)}",
              file=sys.stderr)
    if missing or forbidden:
        sys.exit(1)
    print(f"ok: {len(installed)} packages in the runtime image provide every library "
          f"of {', '.join(sorted(checked))} (and libvips' loaders); no -dev package or compiler")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("derive")
    d.add_argument("binaries", nargs="+")
    c = sub.add_parser("check")
    c.add_argument("--containerfile", default=os.path.join(os.path.dirname(__file__), "..",
                                                           "Containerfile"))
    c.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    if args.command == "derive":
        print("\n".join(derive(needed_libraries(args.binaries, FileOwners()))))
    else:
        check(args.containerfile, args.binaries)


if __name__ == "__main__":
    main()
