# Shared by the PPPoE data-path benches (sourced, not run): the access concentrator's
# configuration, a process's CPU time and the CPUs each side runs on.

# ac_config FILE INTERFACE POOL [KEY-LINE...]: a CHAP access concentrator on INTERFACE for the
# user alice ("alice secret"), 192.0.2.1 on every session, client addresses from POOL
# ("first-last"); each further argument is one more top-level line ("max-sessions = 110").
ac_config() {
  local file=$1 interface=$2 pool=$3
  shift 3
  {
    echo "interfaces = [\"$interface\"]"
    echo 'ac-name = "bench-ac"'
    echo 'authentication = ["chap"]'
    echo 'keepalive-timeout = 60'
    local line
    for line in "$@"; do echo "$line"; done
    cat <<EOT
[[secrets]]
name = "alice"
password = "alice secret"
[profiles.default]
local-address = "192.0.2.1"
remote-address = "clients"
[pools]
clients = ["$pool"]
EOT
  } > "$file"
}

# cpu PID: user + system CPU time in clock ticks (CLK_TCK 100), 0 once the process is gone.
cpu() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null || echo 0; }

# pin_sides: with PIN set, ON_C (the clients' side: prefix for its programs) is `taskset -c 0`,
# ON_S (the AC's side) `taskset -c 1`, and WORKERS (the AC's options) `--workers 1`, as on two
# hosts; without PIN all three are empty and the scheduler shares both CPUs among everything.
pin_sides() {
  ON_C=(); ON_S=(); WORKERS=()
  if [ -n "${PIN:-}" ]; then ON_C=(taskset -c 0); ON_S=(taskset -c 1); WORKERS=(--workers 1); fi
}
