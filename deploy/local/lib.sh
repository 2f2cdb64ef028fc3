# Shared helpers of deploy/local/up, deploy/local/down and deploy/test/run. Source it; do not run it.

labportal_repo() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

labportal_log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

labportal_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    labportal_log "need root for: $*"; return 1; fi
}

# Installs the Debian packages that are missing, with one apt-get update at most.
labportal_ensure_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  labportal_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  labportal_as_root apt-get update -qq >/dev/null
  labportal_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

labportal_require_swift() {
  command -v swift >/dev/null || { [ -x /opt/swift/usr/bin/swift ] && export PATH=/opt/swift/usr/bin:$PATH; }
  command -v swift >/dev/null || { labportal_log "swift is not installed (https://www.swift.org/install/linux/)"; return 1; }
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
# A port nothing listens on, below Linux's ephemeral range (32768–60999) so that no outgoing connection can be
# holding it, and not one this script handed out before (ports are picked before the services bind them). Callers
# use $(labportal_free_port), a subshell, so the ports handed out are noted in a file named after the script's PID.
labportal_free_port() {
  local port picked="${TMPDIR:-/tmp}/labportal-ports-$$"
  for _ in $(seq 1 200); do
    port=$(( (RANDOM % 12000) + 20000 ))
    grep -qx "$port" "$picked" 2>/dev/null && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port" >> "$picked"
      echo "$port"
      return 0
    fi
  done
  return 1
}

# Forgets the ports this script handed out (call on exit).
labportal_forget_ports() { rm -f "${TMPDIR:-/tmp}/labportal-ports-$$"; }

# Waits until URL answers 200, for at most SECONDS.
labportal_wait_http() {
  local url=$1 seconds=$2
  for _ in $(seq 1 $((seconds * 5))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$url" 2>/dev/null)" = 200 ] && return 0
    sleep 0.2
  done
  return 1
}
