#!/usr/bin/env bash
# Install the real backends the e2e tests run, natively (no Docker engine needed):
#   otelcol-otel-ml  built by ocb v0.155.0 from collector-config/builder.yaml
#   jaeger           v2.13.0 (module v1.76.0), built with the Go toolchain
#   telemetrygen     v0.155.0 (collector-contrib), the load generator of bench/bench_collector.py
#   victoria-metrics v1.151.0 (single node), the long-term store Prometheus remote-writes to
#   victoria-logs    v1.52.1 (single node), the log store the collector's logs pipeline writes to
#   prometheus, promtool, prometheus-alertmanager, amtool   from Debian
# Go builds are cached outside the repo, keyed by version (and manifest hash),
# so only a new machine pays for them. Prints the binaries' paths as
# KEY=PATH lines on stdout (progress goes to stderr); `eval` them or read
# them with `otel_ml.cli.stack`.
set -euo pipefail

OCB_VERSION=0.155.0
# Jaeger v2 ships from the v1 module path (no /v2 suffix): Jaeger v2.13.0 is module
# version v1.76.0. The v2.20.0 release commit (798e4b0fcf22, pseudo-version
# v1.76.1-0.20260720033334-798e4b0fcf22) is refused by the module proxy these
# machines reach (403 "not available"), so v2.13.0 is the newest Jaeger v2 we can build.
JAEGER_VERSION=2.13.0
JAEGER_MODULE_VERSION=v1.76.0
# The collector-contrib load generator, at the collector's own release line so the
# OTLP code on both ends of the benchmark is the same release.
TELEMETRYGEN_VERSION=$OCB_VERSION
# VictoriaMetrics single node (Apache-2.0). v1.151.0 builds with the Go here (1.26);
# newer releases may require a newer Go toolchain than these machines have.
VICTORIAMETRICS_VERSION=1.151.0
# VictoriaLogs single node (Apache-2.0): OTLP log ingestion, LogsQL queries by trace id.
# v1.52.1 is served by the module proxy these machines reach and builds with Go 1.26.
VICTORIALOGS_VERSION=1.52.1

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${OTEL_ML_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-ml}
mkdir -p "$cache"

log() { printf '[backends %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

timed() {  # run a build step, log its wall time and peak RSS
  local name=$1; shift
  local start=$SECONDS
  log "$name: starting (cold builds take minutes on 2 cores)"
  /usr/bin/time -f "%M" -o "$cache/$name.maxrss" "$@" >&2
  log "$name: done in $((SECONDS - start))s, peak RSS $(( $(cat "$cache/$name.maxrss") / 1024 )) MiB"
  echo "$name seconds=$((SECONDS - start)) peak_rss_kib=$(cat "$cache/$name.maxrss")" >> "$cache/build-times.txt"
}

need_time() {
  [ -x /usr/bin/time ] || apt_install time
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# Debian's maintainer scripts start each packaged service they install
# (through invoke-rc.d or deb-systemd-invoke, which both ask policy-rc.d
# first); ours run with the project's configs instead. So for the length of
# our one apt-get install a policy-rc.d forbids every start (exit 101), and
# nothing has to be stopped afterwards: the script never stops a service nor
# ends a process it did not start (a prometheus-node-exporter the user runs,
# say). The variable exists for tests/unit/test_backends_script.py.
POLICY_RC_D=${OTEL_ML_POLICY_RC_D:-/usr/sbin/policy-rc.d}
SAVED_POLICY_RC_D="$POLICY_RC_D.otel-ml-saved"

forbid_service_starts() {
  # A policy already in place (a container image's, say) is set aside, not lost.
  if [ -e "$POLICY_RC_D" ]; then mv "$POLICY_RC_D" "$SAVED_POLICY_RC_D"; fi
  printf '#!/bin/sh\n# scripts/backends.sh (otel-ml): no service starts during its apt-get install.\nexit 101\n' \
    > "$POLICY_RC_D"
  chmod 755 "$POLICY_RC_D"
}

restore_service_starts() {
  rm -f "$POLICY_RC_D"
  if [ -e "$SAVED_POLICY_RC_D" ]; then mv "$SAVED_POLICY_RC_D" "$POLICY_RC_D"; fi
}

apt_install_without_starting() {
  local status=0
  forbid_service_starts
  trap restore_service_starts EXIT
  apt_install "$@" || status=$?
  restore_service_starts
  trap - EXIT
  return "$status"
}

install_debian() {
  local missing=()
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
  command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
  if [ ${#missing[@]} -gt 0 ]; then
    # shellcheck disable=SC2046  # one word per package name
    apt_install_without_starting $(printf '%s\n' "${missing[@]}" | sort -u)
  fi
}

# A fix of ours to one collector module (collector-config/patches/, each says
# why): a copy of the release's module, patched, and an ocb `replaces:` entry
# pointing the build at it (`replaces:` is builder.yaml's last key).
patch_collector_module() {
  local module=$1 version=$2 patchfile=$3 work=$4 source copy
  source=$(go mod download -json "$module@$version" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  copy="$work/patched/${module##*/}"
  mkdir -p "$work/patched"
  cp -r "$source" "$copy" && chmod -R u+w "$copy"
  (cd "$copy" && git apply -p1 "$patchfile")
  printf '  - %s %s => %s\n' "$module" "$version" "$copy" >> "$work/builder.yaml"
}

build_collector() {
  local hash dir bin
  # The patches are part of what is built: a changed patch is a new binary.
  hash=$(cat "$repo/collector-config/builder.yaml" "$repo"/collector-config/patches/*.patch \
    | sha256sum | cut -c1-12)
  dir="$cache/otelcol-$OCB_VERSION-$hash"
  bin="$dir/otelcol-otel-ml"
  if [ ! -x "$bin" ]; then
    local ocb="$cache/ocb-$OCB_VERSION/builder"
    if [ ! -x "$ocb" ]; then
      mkdir -p "$cache/ocb-$OCB_VERSION"
      timed ocb env GOBIN="$cache/ocb-$OCB_VERSION" CGO_ENABLED=0 \
        go install "go.opentelemetry.io/collector/cmd/builder@v$OCB_VERSION"
    fi
    local work="$dir.work"
    rm -rf "$work" && mkdir -p "$work"
    sed "s#output_path: .*#output_path: $work/_build#" "$repo/collector-config/builder.yaml" > "$work/builder.yaml"
    patch_collector_module go.opentelemetry.io/collector/exporter/exporterhelper "v$OCB_VERSION" \
      "$repo/collector-config/patches/exporterhelper-v$OCB_VERSION-persistent-queue-start.patch" "$work"
    patch_collector_module \
      github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor \
      "v$OCB_VERSION" \
      "$repo/collector-config/patches/redactionprocessor-v$OCB_VERSION-cheaper-checks.patch" "$work"
    timed collector "$ocb" --config="$work/builder.yaml"
    mkdir -p "$dir"
    mv "$work/_build/otelcol-otel-ml" "$bin"
    rm -rf "$work"
  fi
  echo "OTELCOL_BIN=$bin"
}

build_jaeger() {
  local dir="$cache/jaeger-$JAEGER_VERSION"
  if [ ! -x "$dir/jaeger" ]; then
    # `go install pkg@version` refuses modules whose go.mod has replace directives,
    # and Jaeger's has one (sarama). Build from a throwaway module that requires
    # Jaeger and repeats that replace, so the dependency graph is the release's.
    local work="$dir.work"
    rm -rf "$work" && mkdir -p "$work"
    (
      cd "$work"
      go mod init otel-ml/jaeger-build >/dev/null 2>&1
      go mod edit -replace github.com/Shopify/sarama=github.com/Shopify/sarama@v1.33.0
      timed jaeger-deps go get "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_MODULE_VERSION"
      timed jaeger env CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/jaeger" \
        github.com/jaegertracing/jaeger/cmd/jaeger
    )
    mkdir -p "$dir" && mv "$work/jaeger" "$dir/jaeger" && rm -rf "$work"
  fi
  echo "JAEGER_BIN=$dir/jaeger"
}

build_telemetrygen() {
  local dir="$cache/telemetrygen-$TELEMETRYGEN_VERSION"
  if [ ! -x "$dir/telemetrygen" ]; then
    # Its go.mod has no replace directives, so `go install pkg@version` builds the
    # release's own dependency graph. Built into a work dir and moved, so an
    # interrupted build never leaves a half-written binary in the cache.
    local work="$dir.work"
    rm -rf "$work" && mkdir -p "$work"
    timed telemetrygen env GOBIN="$work" CGO_ENABLED=0 go install -trimpath -ldflags="-s -w" \
      "github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v$TELEMETRYGEN_VERSION"
    mkdir -p "$dir" && mv "$work/telemetrygen" "$dir/telemetrygen" && rm -rf "$work"
  fi
  echo "TELEMETRYGEN_BIN=$dir/telemetrygen"
}

build_victoriametrics() {
  local dir="$cache/victoria-metrics-$VICTORIAMETRICS_VERSION"
  if [ ! -x "$dir/victoria-metrics" ]; then
    # Its go.mod has no replace directives, so `go install pkg@version` builds the
    # release's own dependency graph (as telemetrygen). The ldflag stamps the
    # version that `victoria-metrics -version` and its /metrics report.
    local work="$dir.work"
    rm -rf "$work" && mkdir -p "$work"
    timed victoria-metrics env GOBIN="$work" CGO_ENABLED=0 go install -trimpath \
      -ldflags="-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-metrics-v$VICTORIAMETRICS_VERSION" \
      "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v$VICTORIAMETRICS_VERSION"
    mkdir -p "$dir" && mv "$work/victoria-metrics" "$dir/victoria-metrics" && rm -rf "$work"
  fi
  echo "VICTORIAMETRICS_BIN=$dir/victoria-metrics"
}

build_victorialogs() {
  local dir="$cache/victoria-logs-$VICTORIALOGS_VERSION"
  if [ ! -x "$dir/victoria-logs" ]; then
    # As VictoriaMetrics: no replace directives, so `go install pkg@version`
    # builds the release's own dependency graph; VictoriaLogs reads its version
    # from VictoriaMetrics' lib/buildinfo, which the ldflag stamps.
    local work="$dir.work"
    rm -rf "$work" && mkdir -p "$work"
    timed victoria-logs env GOBIN="$work" CGO_ENABLED=0 go install -trimpath \
      -ldflags="-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-v$VICTORIALOGS_VERSION" \
      "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v$VICTORIALOGS_VERSION"
    mkdir -p "$dir" && mv "$work/victoria-logs" "$dir/victoria-logs" && rm -rf "$work"
  fi
  echo "VICTORIALOGS_BIN=$dir/victoria-logs"
}

main() {
  command -v go >/dev/null || { log "Go is required to build the collector and Jaeger"; exit 1; }
  need_time
  install_debian
  build_collector
  build_jaeger
  build_telemetrygen
  build_victoriametrics
  build_victorialogs
  echo "PROMETHEUS_BIN=$(command -v prometheus)"
  echo "PROMTOOL_BIN=$(command -v promtool)"
  echo "ALERTMANAGER_BIN=$(command -v prometheus-alertmanager)"
  echo "AMTOOL_BIN=$(command -v amtool)"
}

# Sourced (by tests/unit/test_backends_script.py, to run one function with
# stub programs), define the functions only.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
