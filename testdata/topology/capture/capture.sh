#!/usr/bin/env bash
# How testdata/topology/NN-*/ were captured (redis-server 7.0.15). Run step by
# step; every stage waits for the condition named in testdata/README.md.
# Needs: go build -o topocap topocap.go
set -u
CAP=./topocap
OUT=..
PORTS="30101 30102 30103 30104 30105 30106"
start() { p=$1; d=/tmp/topofix/n$p; mkdir -p $d; redis-server --port $p --bind 127.0.0.1 --cluster-enabled yes \
  --cluster-config-file nodes.conf --cluster-node-timeout 2000 --cluster-port $((p+100)) --dir $d --daemonize yes \
  --pidfile $d/pid --logfile $d/log --save "" --appendonly no; }
# cap STAGE: NODES from every live node ($LIVE), SLOTS/SHARDS RESP2+RESP3 and owners from $Q.
cap() { st=$1; mkdir -p $OUT/$st; for p in ${LIVE:-$PORTS}; do $CAP 127.0.0.1:$p CLUSTER NODES > $OUT/$st/nodes-$p.txt; done
  q=${Q:-30101}; $CAP 127.0.0.1:$q CLUSTER SLOTS > $OUT/$st/slots-$q.resp; $CAP -3 127.0.0.1:$q CLUSTER SLOTS > $OUT/$st/slots-$q.resp3
  $CAP 127.0.0.1:$q CLUSTER SHARDS > $OUT/$st/shards-$q.resp; $CAP -3 127.0.0.1:$q CLUSTER SHARDS > $OUT/$st/shards-$q.resp3
  $CAP -owners 127.0.0.1:$q > $OUT/$st/owners.json; }   # owners.json was then folded into fixture.json with jq

for p in $PORTS; do start $p; done
redis-cli --cluster create $(for p in $PORTS; do echo -n "127.0.0.1:$p "; done) --cluster-replicas 1 --cluster-yes
sleep 2; cap 01-healthy
id() { redis-cli -p $1 cluster myid; }; I1=$(id 30101); I2=$(id 30102); I3=$(id 30103)
redis-cli -p 30102 cluster setslot 100 importing $I1; redis-cli -p 30101 cluster setslot 100 migrating $I2
redis-cli -p 30103 cluster setslot 5461 importing $I2; redis-cli -p 30102 cluster setslot 5461 migrating $I3
redis-cli -p 30103 cluster setslot 200 importing $I1
cap 02-migrating
redis-cli -p 30102 cluster setslot 100 node $I2; redis-cli -p 30101 cluster setslot 100 node $I2
redis-cli -p 30103 cluster setslot 5461 stable; redis-cli -p 30102 cluster setslot 5461 stable; redis-cli -p 30103 cluster setslot 200 stable
sleep 1.5; cap 03-after-migration
export LIVE="30101 30103 30104 30105 30106"; kill -9 $(cat /tmp/topofix/n30102/pid)
until redis-cli -p 30101 cluster nodes | grep -q '30102.*fail?'; do sleep 0.02; done; cap 04-pfail
until redis-cli -p 30101 cluster nodes | grep -q '30102@30202 master,fail '; do sleep 0.02; done; cap 05-fail
until redis-cli -p 30106 cluster nodes | grep -q 'myself,master'; do sleep 0.02; done; sleep 0.05; cap 06-after-failover
unset LIVE; start 30102; until redis-cli -p 30102 ping | grep -q PONG; do sleep 0.01; done
LIVE=30102 Q=30102 cap 07-old-master-restarted
until redis-cli -p 30101 cluster nodes | grep -q '30102@30202 slave '; do sleep 0.02; done; sleep 1; cap 08-old-master-back
for p in 30101 30102 30103 30105 30106; do redis-cli -p $p config set cluster-announce-hostname node-$p.example.test; done
for p in $PORTS; do redis-cli -p $p config set cluster-preferred-endpoint-type hostname; done
sleep 1; cap 09-hostnames
for p in $PORTS; do redis-cli -p $p config set cluster-preferred-endpoint-type unknown-endpoint; done; cap 10-unknown-endpoint
for p in $PORTS; do redis-cli -p $p config set cluster-preferred-endpoint-type ip; redis-cli -p $p config set cluster-announce-hostname ""; done
redis-cli -p 30104 cluster reset hard; until redis-cli -p 30101 cluster nodes | grep -q noaddr; do sleep 0.05; done; sleep 0.5; cap 11-noaddr
redis-cli -p 30101 cluster meet 127.0.0.1 30999 30998; sleep 0.2; mkdir -p $OUT/12-handshake
$CAP 127.0.0.1:30101 CLUSTER NODES > $OUT/12-handshake/nodes-30101.txt
for p in $PORTS; do kill -9 $(cat /tmp/topofix/n$p/pid); done
