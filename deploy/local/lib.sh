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

# --- Replicas and the managed PostgreSQL of deploy/local/{up,down,status} ------------------------------------------

labportal_services=(catalog session classroom report)

# The replica count of SERVICE from LABPORTAL_REPLICAS: one number for every service ("2"), or per service
# ("session=3,catalog=2"; the others 1). Fails with a message naming the rule on anything else.
labportal_replicas() {
  local service=$1 spec=${LABPORTAL_REPLICAS:-1} item name count found=1
  if [[ $spec =~ ^[0-9]+$ ]]; then
    count=$spec
  else
    count=1
    IFS=',' read -ra items <<< "$spec"
    for item in "${items[@]}"; do
      item=${item// /}
      [ -z "$item" ] && continue
      [[ $item =~ ^([a-z]+)=([0-9]+)$ ]] || {
        labportal_log "LABPORTAL_REPLICAS: '$item' is not SERVICE=COUNT (for example session=3,catalog=2)"; return 64; }
      name=${BASH_REMATCH[1]}
      [[ " ${labportal_services[*]} " == *" $name "* ]] || {
        labportal_log "LABPORTAL_REPLICAS: unknown service '$name' (catalog, session, classroom, report)"; return 64; }
      [ "$name" = "$service" ] && count=${BASH_REMATCH[2]}
    done
  fi
  if [ "$count" -lt 1 ] || [ "$count" -gt 40 ]; then
    labportal_log "LABPORTAL_REPLICAS: $service: $count replicas; between 1 and 40"; return 64
  fi
  echo "$count"
}

# Ports of replica R (1-based) of SERVICE, from LABPORTAL_PORT_BASE: HTTP base+i+10*(R-1), wire 1000 above
# (i = 1..4 for catalog, session, classroom, report). Replica 1 keeps the ports of a single-replica stack.
labportal_index() { local i; for i in "${!labportal_services[@]}"; do [ "${labportal_services[$i]}" = "$1" ] && echo $((i + 1)); done; }
labportal_http_port() { echo $(( ${LABPORTAL_PORT_BASE:-8100} + $(labportal_index "$1") + 10 * ($2 - 1) )); }
labportal_wire_port() { echo $(( ${LABPORTAL_PORT_BASE:-8100} + 1000 + $(labportal_index "$1") + 10 * ($2 - 1) )); }

# The run-file stem of replica R: "session-service" for the first, "session-service-2" for the others.
labportal_replica_name() { if [ "$2" = 1 ]; then echo "$1-service"; else echo "$1-service-$2"; fi; }

labportal_running() { local pidfile=$1; [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

# The managed PostgreSQL lives in $home/postgres, or, when run as root, in a directory the postgres user may enter
# (a root-owned home such as /root/... or a mktemp directory is not one); $home/postgres/location says where.
labportal_pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
labportal_pg_as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
labportal_pg_dir() {
  local home=$1
  if [ -s "$home/postgres/location" ]; then cat "$home/postgres/location"; return; fi
  if [ "$(id -u)" = 0 ]; then
    echo "/var/lib/labportal/$(printf '%s' "$home" | sha256sum | cut -c1-16)"
  else
    echo "$home/postgres"
  fi
}
labportal_pg_port() { echo $(( ${LABPORTAL_PORT_BASE:-8100} + 1900 )); }
labportal_pg_managed() { [ -s "$1/postgres/url" ]; }

# Stops the managed PostgreSQL of HOME, if it runs.
labportal_pg_stop() {
  local home=$1 dir pgbin
  labportal_pg_managed "$home" || return 0
  dir=$(labportal_pg_dir "$home")
  pgbin=$(labportal_pg_bin)
  [ -f "$dir/data/postmaster.pid" ] || return 0
  labportal_pg_as_owner "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null && labportal_log "stopped PostgreSQL"
}
