#!/bin/bash
# N PPPoE sessions in aggregate against one, in the same run (issue 17): one access-concentrator
# (release build, CHAP, `--data-plane tun`) on a bridge in its own network namespace, N client
# namespaces each joined to the bridge by a veth pair and running pppoe-client; then iperf3
# through one session alone and through all N at once (one iperf3 server per session, on ports
# 5201.. in the AC's namespace), TCP up (client to AC) and down (-R), and optionally UDP with
# 64-byte payloads each way. Aggregates are the sums of the receivers' rates; the AC's CPU from
# /proc/PID/stat (user + system, percent of one core, CLK_TCK 100) and per Gbit/s, the
# clients' CPU summed. Needs root, iperf3, python3. Documentation addresses only: the AC is
# 192.0.2.1, the sessions get 192.0.2.2-254 (so N <= 250).
#
#   cargo build --release -p ppp-stack --example pppoe-client --example access-concentrator
#   [AC_ARGS="--workers 1"] benches/pppoe-many-iperf.sh target/release/examples [N=100] [SECONDS=10] [udp]
#
# Bounded: every program started here is killed and every namespace deleted on exit (a trap),
# session setup gives up after 60 s plus 0.2 s per session, each iperf3 client is run under
# `timeout`.
#
# With GSO_RATE set (datagrams/s in all), four more phases carry 64-byte UDP datagrams from one
# process of benches/udp-gso.py (UDP segmentation offload out, UDP GRO in; its sockets opened
# in each namespace), so that neither iperf3 nor 3N processes set the aggregate: one session,
# then all N sharing the same offered rate, each way. GSO_ONLY=1 runs only those; DEBUG_COUNTS=1
# also prints, per phase, how the interfaces' packet counters moved (where datagrams were lost).
#
#   GSO_ONLY=1 GSO_RATE=600000 benches/pppoe-many-iperf.sh target/release/examples 100 5
#   PIN=1 GSO_ONLY=1 GSO_RATE=400000 benches/pppoe-many-iperf.sh target/release/examples 100 5
set -u
. "$(dirname "$0")/pppoe-bench-lib.sh"
BIN=$1; N=${2:-100}; T=${3:-10}; UDP=${4:-}
if [ "$N" -lt 1 ] || [ "$N" -gt 250 ]; then echo "N must be 1..250" >&2; exit 2; fi
P=pm$$                       # namespace prefix, unique to this run
AC=$P-ac
D=$(mktemp -d)
PIDS=()                      # every background program, killed by cleanup
NAMESPACES=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 1
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add $AC; NAMESPACES+=($AC)
ip -n $AC link set lo up
ip -n $AC link add br0 type bridge
ip -n $AC link set br0 up
for i in $(seq 1 $N); do
  ns=$P-c$i
  ip netns add $ns; NAMESPACES+=($ns)
  ip -n $ns link set lo up
  ip link add veth-c netns $ns type veth peer name vb$i netns $AC
  ip -n $AC link set vb$i master br0
  ip -n $AC link set vb$i up
  ip -n $ns link set veth-c up
done
ac_config $D/ac.toml br0 192.0.2.2-192.0.2.254 "max-sessions = $((N + 10))" "padi-limit = 0"
# AC_NICE (default 0; -10 gives the AC the CPU before the simulated clients): on a small machine
# N client processes, each as entitled to the CPU as the AC's one worker per core, starve it,
# and its packet sockets overflow; clients on their own machines would not.
# PIN=1: the AC (one worker) and the load in its namespace on CPU 1, every client and the load
# in theirs on CPU 0, as when the clients are other machines: the N clients then share one CPU
# and cannot take the AC's (compare N sessions with one at the AC, not the simulated clients).
pin_sides
ip netns exec $AC nice -n ${AC_NICE:-0} "${ON_S[@]}" $BIN/access-concentrator "${WORKERS[@]}" --config $D/ac.toml --data-plane tun ${AC_ARGS:-} 2>$D/ac.log &
ACPID=$!; PIDS+=($ACPID)
sleep 1
for i in $(seq 1 $N); do
  ip netns exec $P-c$i "${ON_C[@]}" $BIN/pppoe-client --interface veth-c --user alice \
    --password "alice secret" --allow chap --no-reconnect --tun-name pppoe-c \
    --data-plane tun 2>$D/client$i.log &
  PIDS+=($!); CLPIDS[$i]=$!
  sleep 0.02
done
# Wait (bounded) for every session's address.
ADDR=()
deadline=$(( $(date +%s) + 60 + N / 5 ))
for i in $(seq 1 $N); do
  while :; do
    a=$(ip -n $P-c$i -4 -o addr show pppoe-c 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
    [ -n "$a" ] && { ADDR[$i]=$a; break; }
    if [ "$(date +%s)" -ge $deadline ]; then
      echo "session $i did not come up within the setup bound" >&2; tail -5 $D/client$i.log >&2
      exit 1
    fi
    sleep 0.2
  done
done
echo "$N sessions up (AC RSS $(awk '/VmRSS/{print $2}' /proc/$ACPID/status) kB)"
if [ -z "${GSO_ONLY:-}" ]; then
  for i in $(seq 1 $N); do
    ip netns exec $AC "${ON_S[@]}" iperf3 -s -p $((5200 + i)) >/dev/null 2>&1 &
    PIDS+=($!)
  done
  sleep 1
fi

clients_cpu() { local s=0 i; for i in $(seq 1 $1); do s=$((s + $(cpu ${CLPIDS[$i]}))); done; echo $s; }
# phase LABEL SESSIONS ARGS: iperf3 in sessions 1..SESSIONS at once.
phase() {
  local label=$1 n=$2 args=$3 i
  local a0=$(cpu $ACPID) c0=$(clients_cpu $n) t0=$(date +%s.%N)
  local waits=()
  for i in $(seq 1 $n); do
    timeout $((T + 30)) ip netns exec $P-c$i "${ON_C[@]}" iperf3 -c 192.0.2.1 -p $((5200 + i)) -t $T -J \
      $args > $D/$label-$i.json 2>/dev/null &
    waits+=($!); PIDS+=($!)
  done
  wait "${waits[@]}"
  local a1=$(cpu $ACPID) c1=$(clients_cpu $n) t1=$(date +%s.%N)
  python3 - "$label" "$n" "$a0" "$a1" "$c0" "$c1" "$t0" "$t1" "$D" <<'PY'
import json, sys
lab, n = sys.argv[1], int(sys.argv[2])
a0, a1, c0, c1, t0, t1 = map(float, sys.argv[3:9]); d = sys.argv[9]
el = t1 - t0; ac = (a1 - a0) / 100 / el * 100; cl = (c1 - c0) / 100 / el * 100
rates, pps, retr, failed = [], [], 0, 0
for i in range(1, n + 1):
    try:
        j = json.load(open(f"{d}/{lab}-{i}.json")); e = j["end"]
        if j["start"]["test_start"]["protocol"] == "UDP":
            u = e.get("sum_received", e["sum"])
            pps.append((u["packets"] - u["lost_packets"]) / u["seconds"])
        else:
            rates.append(e["sum_received"]["bits_per_second"] / 1e9)
            retr += e["sum_sent"].get("retransmits") or 0
    except Exception:
        failed += 1
cpu = f"AC CPU {ac:.0f}%, clients' CPU {cl:.0f}% (wall {el:.1f} s)"
bad = f", {failed} iperf3 runs failed" if failed else ""
if rates:
    tot = sum(rates)
    per = f", AC {ac / tot:.0f}% of a core per Gbit/s" if tot > 0 else ""
    print(f"{lab}: {n} sessions, {tot:.2f} Gbit/s in aggregate (per session min {min(rates):.3f} "
          f"max {max(rates):.3f}), retransmits {retr}, {cpu}{per}{bad}")
elif pps:
    print(f"{lab}: {n} sessions, {sum(pps):.0f} packets/s received in aggregate (per session "
          f"min {min(pps):.0f} max {max(pps):.0f}), {cpu}{bad}")
else:
    print(f"{lab}: {n} sessions, no result{bad}")
PY
}
# counts N: packet counters (debugging aid, DEBUG_COUNTS=1): clients' TUN and veth, AC's.
counts() {
  local i
  for i in $(seq 1 $1); do ip -n $P-c$i -s -j link show; done | python3 -c "
import json,sys
t={}
for line in sys.stdin:
    for x in json.loads(line):
        for k in ('rx','tx'):
            for f in ('packets','dropped'):
                key=x['ifname']+'.'+k+'.'+f; t[key]=t.get(key,0)+x.get('stats64',{}).get(k,{}).get(f,0)
for k,v in t.items():
    if not k.startswith('lo'): print('clients.'+k, v, 0)"
  ip -d -n $AC -s -j link show | python3 -c "
import json,sys
t={}
for x in json.load(sys.stdin):
    name='tun' if x.get('linkinfo',{}).get('info_kind')=='tun' or x['ifname'].startswith('ppp') else x['ifname']
    if name.startswith('vb'): name='vb'
    for k in ('rx','tx'):
        for f in ('packets','dropped'):
            key=name+'.'+k+'.'+f; t[key]=t.get(key,0)+x.get('stats64',{}).get(k,{}).get(f,0)
for k,v in t.items():
    if not k.startswith('lo'): print('ac.'+k, v, 0)"
}
# gso_phase LABEL SESSIONS up|down: the light UDP load through sessions 1..SESSIONS at once.
gso_phase() {
  local label=$1 n=$2 dir=$3 i senders=() receivers=()
  for i in $(seq 1 $n); do
    if [ "$dir" = up ]; then
      senders+=("$P-c$i:192.0.2.1")
    else
      senders+=("$AC:${ADDR[$i]}"); receivers+=("$P-c$i:${ADDR[$i]}")
    fi
  done
  [ "$dir" = up ] && receivers=("$AC:192.0.2.1")
  # (With PIN=1 each load process runs on its namespaces' side.)
  local on_send=("${ON_C[@]}") on_recv=("${ON_S[@]}")
  [ "$dir" = down ] && { on_send=("${ON_S[@]}"); on_recv=("${ON_C[@]}"); }
  "${on_recv[@]}" python3 "$(dirname "$0")/udp-gso.py" recv-many $T "${receivers[@]}" > $D/$label-recv & local rp=$!
  PIDS+=($rp)
  sleep 0.5
  [ -n "${DEBUG_COUNTS:-}" ] && counts $n > $D/$label-c0
  local a0=$(cpu $ACPID) c0=$(clients_cpu $n) t0=$(date +%s.%N)
  local sent; sent=$(timeout $((T + 30)) "${on_send[@]}" python3 "$(dirname "$0")/udp-gso.py" send-many $T $GSO_RATE "${senders[@]}")
  local a1=$(cpu $ACPID) c1=$(clients_cpu $n) t1=$(date +%s.%N)
  wait $rp
  [ -n "${DEBUG_COUNTS:-}" ] && { counts $n > $D/$label-c1; paste $D/$label-c0 $D/$label-c1 | awk '{printf "%s +%d  ", $1, $5-$2} END {print ""}'; }
  python3 - "$label" "$n" "$sent" "$(cat $D/$label-recv)" "$a0" "$a1" "$c0" "$c1" "$t0" "$t1" <<'PY'
import re, sys
lab, n, sent, got = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
a0, a1, c0, c1, t0, t1 = map(float, sys.argv[5:11]); el = t1 - t0
count = int(re.search(r"received (\d+)", got).group(1)); rate = re.search(r"([0-9]+)/s", got).group(1)
ac = (a1 - a0) / 100 / el * 100; cl = (c1 - c0) / 100 / el * 100
print(f"{lab}: {n} sessions, {rate} datagrams/s received in aggregate ({sent}); AC CPU {ac:.0f}% "
      f"({(a1 - a0) / 100 / max(count, 1) * 1e6:.2f} us/datagram), clients' CPU {cl:.0f}% "
      f"({(c1 - c0) / 100 / max(count, 1) * 1e6:.2f} us/datagram)")
PY
}
if [ -z "${GSO_ONLY:-}" ]; then
phase tcp-up-1 1 ""
phase tcp-up-$N $N ""
phase tcp-down-1 1 "-R"
phase tcp-down-$N $N "-R"
fi
if [ -n "${GSO_RATE:-}" ]; then
  gso_phase udp64-gso-up-1 1 up
  gso_phase udp64-gso-up-$N $N up
  gso_phase udp64-gso-down-1 1 down
  gso_phase udp64-gso-down-$N $N down
fi
if [ "$UDP" = udp ] && [ -z "${GSO_ONLY:-}" ]; then
  phase udp64-up-1 1 "-u -b 0 -l 64"
  phase udp64-up-$N $N "-u -b 0 -l 64"
  phase udp64-down-1 1 "-u -b 0 -l 64 -R"
  phase udp64-down-$N $N "-u -b 0 -l 64 -R"
fi
