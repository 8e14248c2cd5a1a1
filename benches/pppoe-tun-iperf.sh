#!/bin/bash
# The PPPoE programs' TUN path against the bare veth pair under it (issue 17): release builds of
# access-concentrator and pppoe-client in two network namespaces joined by a veth pair, CHAP,
# `--data-plane tun`; iperf3 TCP each way (up: client to AC; down, -R: AC to client) and UDP with
# 64-byte payloads each way through the session, then
# the veth's own addresses, in one run; the programs' CPU from /proc/PID/stat (user + system,
# percent of one core, CLK_TCK 100). Needs root, iperf3 and python3.
#
#   cargo build --release -p ppp-stack --example pppoe-client --example access-concentrator
#   benches/pppoe-tun-iperf.sh target/release/examples on 10    # offloads (the default)
#   benches/pppoe-tun-iperf.sh target/release/examples off 10   # --no-tun-offload
#   benches/pppoe-tun-iperf.sh target/release/examples on 10 51.2M  # UDP at 100,000 packets/s
#   GSO_RATE=520000 benches/pppoe-tun-iperf.sh target/release/examples on 5  # and a light load
#   GSO_ONLY=1 GSO_RATE=520000 benches/pppoe-tun-iperf.sh target/release/examples on 5  # that alone
#   PIN=1 GSO_ONLY=1 GSO_RATE=600000 benches/pppoe-tun-iperf.sh target/release/examples on 5  # one CPU a side
#
# The UDP runs send as fast as iperf3 can (-b 0) unless a rate is given: at a fixed rate the
# programs' CPU per packet compares builds even on a machine whose other load varies. Besides
# what iperf3 received, a UDP run reports what the programs carried, from the TUN devices'
# counters: packets the sending side's program read from its TUN device (and those the
# kernel dropped at that device's full queue), the writes the other program made into its own
# (one per datagram, or one per UDP super-packet where the device takes them: GSO_UDP_L4), and
# the datagrams that reached the receiving namespace's UDP sockets (/proc/net/snmp InDatagrams +
# RcvbufErrors: on a small machine iperf3's receiver, starved of CPU, loses some at its socket).
#
# With GSO_RATE set (datagrams/s), two more runs carry 64-byte UDP datagrams each way from
# benches/udp-gso.py: sent with UDP segmentation offload and received with UDP GRO, so that the
# load generator costs little per datagram and the programs set the rate. The PPPoE session
# still carries one frame per datagram. Reported: datagrams/s sent and received, each program's
# CPU and its CPU time per datagram received.
set -u
. "$(dirname "$0")/pppoe-bench-lib.sh"
BIN=$1; OFF=$2; T=${3:-10}; UDP_RATE=${4:-0}
C=pppoe-bench-c; S=pppoe-bench-s
ip netns del $C 2>/dev/null; ip netns del $S 2>/dev/null
ip netns add $C; ip netns add $S
ip link add veth-c netns $C type veth peer name veth-s netns $S
ip -n $C link set lo up; ip -n $S link set lo up
ip -n $C link set veth-c up; ip -n $S link set veth-s up
ip -n $C addr add 198.51.100.2/24 dev veth-c; ip -n $S addr add 198.51.100.1/24 dev veth-s
D=$(mktemp -d); mkdir -p $D
ac_config $D/ac.toml veth-s 192.0.2.100-192.0.2.199
SW=""; [ "$OFF" = off ] && SW="--no-tun-offload"
# PIN=1: the client's side (the client and the light load in its namespace) on CPU 0, the AC's
# (the AC with one worker, and the load in its namespace) on CPU 1, as on two hosts.
pin_sides
ip netns exec $S "${ON_S[@]}" $BIN/access-concentrator "${WORKERS[@]}" --config $D/ac.toml --data-plane tun $SW 2>$D/ac.log & ACP=$!
sleep 1
ip netns exec $C "${ON_C[@]}" $BIN/pppoe-client --interface veth-c --user alice --password "alice secret" --allow chap --no-reconnect --tun-name pppoe-c --data-plane tun $SW 2>$D/client.log & CLP=$!
for i in $(seq 1 100); do ip -n $C addr show pppoe-c 2>/dev/null | grep -q 192.0.2 && break; sleep 0.2; done
sleep 1
# ip netns exec execs directly, so the pid is the program's
ACPID=$ACP; CLPID=$CLP
run() { # label, args
  ip netns exec $S iperf3 -s -1 >/dev/null 2>&1 & sleep 0.5
  # The TUN devices' counters (the AC's session device and the client's), before and after.
  tuns() { ip -n $S -j -s link show type tun; ip -n $C -j -s link show type tun; }
  # Datagrams delivered to UDP sockets (or dropped at a full one) in each namespace.
  udp_in() { for ns in $S $C; do ip netns exec $ns awk '/^Udp:/ && $2 ~ /^[0-9]/ {print $2 + $6}' /proc/net/snmp; done | paste -sd' '; }
  local u0; u0=$(udp_in)
  tuns > $D/tun0-$3.json
  local a0=$(cpu $ACPID) c0=$(cpu $CLPID) t0=$(date +%s.%N)
  ip netns exec $C iperf3 -c $1 -t $T -J $2 > $D/iperf-$3.json
  local a1=$(cpu $ACPID) c1=$(cpu $CLPID) t1=$(date +%s.%N)
  tuns > $D/tun1-$3.json
  local u1; u1=$(udp_in)
  python3 - "$D/iperf-$3.json" "$3" "$a0" "$a1" "$c0" "$c1" "$t0" "$t1" "$D/tun0-$3.json" "$D/tun1-$3.json" "$u0" "$u1" <<'PY'
import json,sys
j=json.load(open(sys.argv[1])); lab=sys.argv[2]
a0,a1,c0,c1,t0,t1=map(float,sys.argv[3:9]); hz=100; el=t1-t0
def tuns(path):
    # Two JSON arrays, one per namespace: the AC's first, then the client's.
    text=open(path).read().strip(); ac,_,cl=text.partition('\n')
    pick=lambda a: (json.loads(a) or [{}])[0].get('stats64',{})
    return pick(ac), pick(cl)
(ac0,cl0),(ac1,cl1)=tuns(sys.argv[9]),tuns(sys.argv[10])
# Datagrams that reached UDP sockets per second: (AC's namespace, client's namespace).
(sa0,sc0),(sa1,sc1)=[tuple(map(int,x.split())) for x in sys.argv[11:13]]
ac_udp,cl_udp=(sa1-sa0)/el,(sc1-sc0)/el
d=lambda a,b,k,f: (b.get(k,{}).get(f,0)-a.get(k,{}).get(f,0))/el
e=j['end']; cpu=f"AC CPU {(a1-a0)/hz/el*100:.0f}%, client CPU {(c1-c0)/hz/el*100:.0f}%"
if j['start']['test_start']['protocol'] != 'UDP':
    r=e['sum_received']['bits_per_second']/1e9; s=e['sum_sent']
    print(f"{lab}: {r:.2f} Gbit/s received, retransmits {s.get('retransmits')}, {cpu}")
else:
    u=e['sum_received'] if 'sum_received' in e else e['sum']
    got=u['packets']-u['lost_packets']
    # What the programs carried: read from one TUN device (tx: the kernel to the program;
    # tx dropped: its queue was full) and written into the other (rx).
    if j['start']['test_start'].get('reverse'):
        path=f"AC read {d(ac0,ac1,'tx','packets'):.0f}/s from its TUN ({d(ac0,ac1,'tx','dropped'):.0f}/s dropped at its queue), client wrote {d(cl0,cl1,'rx','packets'):.0f} frames/s, {cl_udp:.0f} datagrams/s reached its sockets"
    else:
        path=f"client read {d(cl0,cl1,'tx','packets'):.0f}/s from its TUN ({d(cl0,cl1,'tx','dropped'):.0f}/s dropped at its queue), AC wrote {d(ac0,ac1,'rx','packets'):.0f} frames/s, {ac_udp:.0f} datagrams/s reached its sockets"
    print(f"{lab}: {got/u['seconds']:.0f} packets/s received of {u['packets']/u['seconds']:.0f} sent ({u['lost_packets']} lost); {path}; {cpu}")
PY
  wait $! 2>/dev/null
}
if [ -z "${GSO_ONLY:-}" ]; then
run 192.0.2.1 "" "pppoe-up-$OFF"
run 192.0.2.1 "-R" "pppoe-down-$OFF"
# UDP with 64-byte payloads, as fast as iperf3 sends them, each way.
run 192.0.2.1 "-u -b $UDP_RATE -l 64" "pppoe-udp64-up-$OFF"
run 192.0.2.1 "-u -b $UDP_RATE -l 64 -R" "pppoe-udp64-down-$OFF"
fi
# The light UDP load: send namespace, receive namespace, destination, label.
gso_run() {
  local on_send=("${ON_C[@]}") on_recv=("${ON_S[@]}")
  [ "$1" = $S ] && { on_send=("${ON_S[@]}"); on_recv=("${ON_C[@]}"); }
  ip netns exec $2 "${on_recv[@]}" python3 "$(dirname "$0")/udp-gso.py" recv $3 $T > $D/gso-recv-$4 & local rp=$!
  sleep 0.5
  local a0=$(cpu $ACPID) c0=$(cpu $CLPID) t0=$(date +%s.%N)
  local sent; sent=$(ip netns exec $1 "${on_send[@]}" python3 "$(dirname "$0")/udp-gso.py" send $3 $T $GSO_RATE)
  local a1=$(cpu $ACPID) c1=$(cpu $CLPID) t1=$(date +%s.%N)
  wait $rp
  python3 - "$4" "$sent" "$(cat $D/gso-recv-$4)" "$a0" "$a1" "$c0" "$c1" "$t0" "$t1" <<'PY'
import re,sys
lab,sent,got=sys.argv[1:4]; a0,a1,c0,c1,t0,t1=map(float,sys.argv[4:10]); el=t1-t0; hz=100
n=int(re.search(r"received (\d+)",got).group(1)); rate=re.search(r"([0-9]+)/s",got).group(1)
us=lambda ticks: ticks/hz/max(n,1)*1e6
print(f"{lab}: {rate} datagrams/s received ({sent}); AC CPU {(a1-a0)/hz/el*100:.0f}% ({us(a1-a0):.2f} us/datagram), client CPU {(c1-c0)/hz/el*100:.0f}% ({us(c1-c0):.2f} us/datagram)")
PY
}
if [ -n "${GSO_RATE:-}" ]; then
  CADDR=$(ip -n $C -4 -o addr show pppoe-c | awk '{print $4}' | cut -d/ -f1)
  gso_run $C $S 192.0.2.1 "pppoe-udp64-gso-up-$OFF"
  gso_run $S $C $CADDR "pppoe-udp64-gso-down-$OFF"
fi
if [ "$OFF" = on ] && [ -z "${GSO_ONLY:-}" ]; then
  run 198.51.100.1 "" "veth-up"
  run 198.51.100.1 "-R" "veth-down"
fi
grep -h "offloads\|mtu" $D/client.log | head -2
kill $CLP; sleep 1; kill $ACP; sleep 1
ip netns del $C; ip netns del $S
