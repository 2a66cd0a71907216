#!/usr/bin/env bash
# Runs Temporal's time-skipping test server (the Java one, io.temporal:temporal-test-server
# from Maven Central) so that no release binary has to be downloaded.
#
# Usage:
#   scripts/temporal-test-server.sh --resolve-only          # resolve into the cache, print the cache dir
#   scripts/temporal-test-server.sh <port> [--enable-time-skipping]
#
# The second form is what @temporalio/testing runs when given
#   executable: { type: 'existing-path', path: '<this script>' }
# (the SDK passes "<port>" followed by TimeSkippingServerConfig.extraArgs, nothing else).
#
# Environment:
#   TEMPORAL_TEST_SERVER_VERSION      artifact version (default 1.35.0)
#   HOSTFLOW_CACHE_DIR                cache root (default $HOME/.cache/hostflow)
#   TEMPORAL_TEST_SERVER_JAVA_OPTS    extra JVM options (default: fast-startup flags)
#
# The first run resolves the artifact and its runtime dependencies with Maven into
# ~/.m2 and writes the classpath to <cache>/temporal-test-server/<version>/classpath.txt.
# Later runs reuse that file as long as every jar on it still exists.
set -euo pipefail

VERSION="${TEMPORAL_TEST_SERVER_VERSION:-1.35.0}"
CACHE_ROOT="${HOSTFLOW_CACHE_DIR:-${HOME}/.cache/hostflow}"
CACHE_DIR="${CACHE_ROOT}/temporal-test-server/${VERSION}"
CLASSPATH_FILE="${CACHE_DIR}/classpath.txt"
MAIN_CLASS="io.temporal.testserver.TestServer"

log() { printf 'temporal-test-server: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

require_tool() {
  local tool="$1" pkg="$2"
  if ! command -v "$tool" >/dev/null 2>&1; then
    die "'${tool}' not found on PATH. Install it, e.g.: sudo apt-get update && sudo apt-get install -y ${pkg}"
  fi
}

# True when classpath.txt exists, is non-empty, and every entry on it exists.
classpath_is_valid() {
  [[ -s "$CLASSPATH_FILE" ]] || return 1
  local cp entry
  cp="$(<"$CLASSPATH_FILE")"
  [[ "$cp" == *"temporal-test-server-${VERSION}.jar"* ]] || return 1
  local IFS=':'
  for entry in $cp; do
    [[ -n "$entry" && -f "$entry" ]] || return 1
  done
  return 0
}

write_pom() {
  cat >"${CACHE_DIR}/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.hostflow</groupId>
  <artifactId>temporal-test-server-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.temporal</groupId>
      <artifactId>temporal-test-server</artifactId>
      <version>${VERSION}</version>
    </dependency>
  </dependencies>
</project>
EOF
}

# Must be called with the lock held.
resolve_locked() {
  classpath_is_valid && return 0   # someone else resolved it while we waited for the lock

  require_tool mvn maven
  log "resolving io.temporal:temporal-test-server:${VERSION} via Maven (first time only) into ${CACHE_DIR} ..."
  local started=$SECONDS
  write_pom
  local tmp="classpath.txt.tmp.$$"
  rm -f "${CACHE_DIR}/${tmp}"
  local mvn_log="${CACHE_DIR}/maven.log"
  # Maven's output goes to a log (it is noisy even with -q); it is shown only on failure.
  if ! (cd "$CACHE_DIR" && mvn -q -B -Dstyle.color=never dependency:build-classpath \
        -Dmdep.outputFile="$tmp" -Dmdep.includeScope=runtime) >"$mvn_log" 2>&1; then
    cat "$mvn_log" >&2
    rm -f "${CACHE_DIR}/${tmp}"
    die "Maven failed to resolve io.temporal:temporal-test-server:${VERSION} (is Maven Central reachable?)"
  fi
  mv -f "${CACHE_DIR}/${tmp}" "$CLASSPATH_FILE"
  classpath_is_valid || die "resolved classpath in ${CLASSPATH_FILE} is incomplete"
  log "resolved in $((SECONDS - started))s"
}

resolve() {
  classpath_is_valid && return 0
  mkdir -p "$CACHE_DIR"
  local lock="${CACHE_DIR}/.lock"
  if command -v flock >/dev/null 2>&1; then
    # Subshell so the lock fd is not inherited by the JVM we exec later.
    (
      exec 9>"$lock"
      flock 9
      resolve_locked
    )
  else
    # Portable fallback (e.g. macOS): mkdir is atomic.
    local lockdir="${lock}.d" waited=0
    until mkdir "$lockdir" 2>/dev/null; do
      sleep 1
      waited=$((waited + 1))
      if (( waited > 600 )); then die "timed out waiting for lock ${lockdir}"; fi
    done
    trap 'rmdir "$lockdir" 2>/dev/null || true' EXIT
    resolve_locked
    rmdir "$lockdir" 2>/dev/null || true
    trap - EXIT
  fi
}

require_tool java openjdk-17-jre-headless

CDS_ARCHIVE="${CACHE_DIR}/classes.jsa"
JAVA_BASE_OPTS=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1)

# A class-data-sharing archive of the server's classes, made once by starting the server and
# stopping it (the JVM writes the archive at exit): later JVMs map it instead of loading and
# verifying thousands of classes, which roughly halves start-up. Best effort: without it the server
# still starts, more slowly.
make_cds_archive() {
  [[ -s "$CDS_ARCHIVE" ]] && return 0
  local port=$(( 20000 + RANDOM % 20000 )) waited=0 pid
  java "${JAVA_BASE_OPTS[@]}" -XX:ArchiveClassesAtExit="${CDS_ARCHIVE}.tmp.$$" -cp "$(<"$CLASSPATH_FILE")" "$MAIN_CLASS" "$port" >/dev/null 2>&1 &
  pid=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; do
    sleep 0.2
    waited=$((waited + 1))
    if (( waited > 300 )) || ! kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "${CDS_ARCHIVE}.tmp.$$"
      log "could not make the class-data-sharing archive (continuing without it)"
      return 0
    fi
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ -s "${CDS_ARCHIVE}.tmp.$$" ]]; then mv -f "${CDS_ARCHIVE}.tmp.$$" "$CDS_ARCHIVE"; else rm -f "${CDS_ARCHIVE}.tmp.$$"; fi
}

if [[ "${1:-}" == "--resolve-only" ]]; then
  resolve
  make_cds_archive
  printf '%s\n' "$CACHE_DIR"
  exit 0
fi

if [[ $# -lt 1 ]]; then
  die "usage: $0 --resolve-only | <port> [--enable-time-skipping]"
fi

resolve

# Fast JVM startup matters: the SDK gives the server only ~5 s to accept connections.
default_opts="${JAVA_BASE_OPTS[*]} -Xshare:auto"
[[ -s "$CDS_ARCHIVE" ]] && default_opts+=" -XX:SharedArchiveFile=${CDS_ARCHIVE}"
# shellcheck disable=SC2086
exec java ${TEMPORAL_TEST_SERVER_JAVA_OPTS:-$default_opts} \
  -cp "$(<"$CLASSPATH_FILE")" "$MAIN_CLASS" "$@"
