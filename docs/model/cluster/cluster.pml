/*
 * cluster.pml -- SPIN model of Eddy's exactly-once Redis sink on a Redis Cluster (docs/redis-cluster.md),
 * derived from shared/model/sink.pml (FIX=4, the progress fence, which is what the code does today).
 *
 * Mirrors (the project's sources):
 *   Sources/EddyEngine/Sink/RedisClusterSinkTransport.swift  (check = connect/probe per slot against its own record,
 *                                                            write: outcome of the slots, full check, record update)
 *   Sources/EddyRedis/RedisClusterEpochWriter.swift          (rounds: GET markers in slot order, fence per slot,
 *                                                            then one compare-and-set script per slot; a slot whose
 *                                                            marker moved is read again next round)
 *   Sources/EddyEngine/Sink/SinkStateMachine.swift           (fence, probe, nextWrite, putBack, writeSucceeded, ...)
 *   Sources/EddyEngine/Sink/SinkDriver.swift                 (ack handed to the coordinator, then the machine)
 *   Sources/EddyEngine/Pipeline/CheckpointThread.swift       (acknowledge: queued, merged newest per slot;
 *                                                            recorded in LMDB later by the checkpoint thread)
 *   Sources/EddyState/CheckpointStore.swift                  (recordAcknowledged with slots, never backwards)
 *
 * Two keys in two hash slots: key 0 in slot 0, key 1 in slot 1, one marker per slot.  Messages m0 m1 m2 ...
 * have keys 0, 1, 0, 0, ...; values are counts.  Progress is one partition's offset, written here as a
 * *position* p = offset + 1 (0 = no offsets / marker absent / nothing recorded).  In one store the epoch grows
 * with the offset (every checkpoint here consumed something, the start-up one excepted, which is the first), so
 * the store's and the coordinator's epoch comparisons are position comparisons; epochs are not kept.
 *
 * One process runs guarded atomic actions (each one step of one thread of one daemon, or of the environment);
 * faults fall between any two: crash+restart, a lost reply / broken connection on a slot's script, a slot loss
 * (the slot's master restarted empty: keys and marker gone; or a failover to a replica that missed the last
 * writes: keys and marker of an older point), and (ZOMBIE) a second daemon from a copy of the store.
 *
 * Build-time switches (spin -DNAME=value -a cluster.pml):
 *   NMSG      messages (3; 4 makes epochs that touch slot 0 only more frequent)
 *   CRASHES   crash+restart budget            LOST    budget of failed scripts (applied + reply lost, or not sent)
 *   LOSSES    slot-loss budget                LOSSKIND 1 = flush (empty) only, 2 = failover only, 3 = both
 *   ZOMBIE    1 = a copy of A's store is taken at any moment, daemon B started from it later
 *   STRONG    1 = P1 compares with the largest value ever present (across losses); 0 = since the slot's last loss
 *   FULLCHECK 1 = the write's "every slot in use" check after a write may run (RedisClusterSinkTransport:106)
 *   CHECKP5   1 = assert P5 (no false "slot lost data" verdict)
 *   MUTANT    0 = code as is; 1 = fence every slot against the sink's (global) acknowledged progress instead of
 *             its own record; 2 = acknowledge as soon as the first slot applied (recording that slot only);
 *             3 = no "missing / behind its own record" check per slot (a lost slot is never noticed)
 *             4 = no "marker ahead" check per slot (a write applies over a newer marker; needs ZOMBIE)
 *   REACH     witnesses (their assertion must fail, the trail shows the behaviour is reached):
 *             1 = a probe finds a slot with a marker behind its own record (a failover that lost acked writes)
 *             2 = an acknowledged delta touches slot 0 only while slot 1 has a record older than it
 *             3 = the full check after a write finds a lost slot
 *             4 = a write is refused because a slot's marker is ahead (ZOMBIE)
 *             5 = a crash falls between the two slots' scripts of one write
 *             6 = settled with the ack recorded (P2 reached at all)
 *             7 = a connect/probe re-sends the whole view because the store has an ack but no slot record
 */

#ifndef NMSG
#define NMSG 3
#endif
#ifndef CRASHES
#define CRASHES 2
#endif
#ifndef LOST
#define LOST 1
#endif
#ifndef LOSSES
#define LOSSES 1
#endif
#ifndef LOSSKIND
#define LOSSKIND 3
#endif
#ifndef ZOMBIE
#define ZOMBIE 0
#endif
#ifndef STRONG
#define STRONG 0
#endif
#ifndef FULLCHECK
#define FULLCHECK 1
#endif
#ifndef CHECKP5
#define CHECKP5 1
#endif
#ifndef MUTANT
#define MUTANT 0
#endif
#ifndef REACH
#define REACH 0         /* n > 0: assert that witness n never happens, to get a trail showing it does (below) */
#endif

#define DOWN       0    /* not started (B before the operator starts it) */
#define CONNECTING 2
#define IDLE       3
#define RENDERING  4    /* renderFullView asked: read the latest checkpoint next */
#define RENDERED   5    /* rendered: hand it to the machine (fullViewRendered) next */
#define WRITING    6

/* per-slot phase of the write in flight (ws) */
#define WS_NONE  0      /* the write has no key in this slot */
#define WS_READ  1      /* GET marker + fence next (this round's read phase) */
#define WS_CAS   2      /* fence said write: compare-and-set script next (this round's script phase) */
#define WS_DONE  3      /* applied */
#define WS_SAME  4      /* refused: marker == write (already there) */
#define WS_AHEAD 5      /* refused: marker ahead */
#define WS_WHOLE 6      /* refused: whole view needed (slot lost data) */

#define FINAL (NMSG + 1)                 /* position of the last checkpoint */
#define key1at(o) ((o) >= 2 -> 1 : 0)    /* count of key 1 after o messages (m1 only) */
#define valAt(s, p) ((p) == 0 -> 0 : ((s) == 1 -> key1at((p) - 1) : ((p) - 1) - key1at((p) - 1)))

/* ---------------- Redis Cluster ---------------- */
byte rv[2];             /* value of key s (slot s), 0 = absent */
byte rm[2];             /* marker of slot s: position, 0 = absent */
byte repv[2]; byte repm[2];   /* what slot s's replica holds (it may lag: asynchronous replication) */
byte hi[2];             /* P1: largest value of key s present so far (since the slot's last loss unless STRONG) */
byte lossOf[2];         /* P5: losses slot s suffered */

/* ---------------- LMDB, per daemon (durable) ---------------- */
byte Lpos[2];           /* committed checkpoint (position; 0 = none yet) */
byte Lc0[2]; byte Lc1[2];
byte Lack[2];           /* the sink's acknowledged position (0 = nothing acknowledged) */
byte Lrec[4];           /* per slot (2*d+s): ack_slot record, position of the last acked write touching s */

/* ---------------- memory, per daemon ---------------- */
byte st[2];
byte moff[2];           /* next offset of the hot loop */
byte cpos[2];           /* committed position (machine.committed) */
byte mc0[2]; byte mc1[2]; bool d0[2]; bool d1[2];
byte ack[2];            /* machine.acknowledgedEpoch / acknowledged (as a position; 0 = nil) */
bool needfull[2];
byte pv0[2]; byte pv1[2]; byte pe0[2]; byte pe1[2];   /* pending value (0 = none) and its position */
byte waitp[2];          /* machine.waitingFor (0 = nil) */
byte mrec[4];           /* transport.slotRecord (0 = no entry) */
bool recmiss[2];        /* transport.recordMissing */
byte q[2]; byte qs[4];  /* CheckpointThread.acknowledgements: queued ack and per-slot entries (0 = none) */
/* write in flight */
byte wpos[2]; byte wv0[2]; byte wv1[2]; bool wfull[2];
byte ws[4];             /* per slot phase */
byte wexp[4];           /* the marker the fence read (the script's ARGV[1]) */
bool wcas[2];           /* the round is in its script phase */
byte wahead[2];         /* join of the markers ahead */

byte crashes; byte lost; byte losses;
bool quiet;             /* no faults from here on (P2 is checked once everything settles) */
bool copied; bool bstarted;

#define running(d) (st[d] != DOWN)

/* ---------------- the fence, per slot (SinkStateMachine.fence with base = the slot's own record) ---------------- */
#if MUTANT == 1
#define BASE(d, s) (ack[d])                 /* mutant: the sink's acknowledged progress for every slot */
#else
#define BASE(d, s) (mrec[2*(d)+(s)])
#endif
#define LOSTCHECK (MUTANT != 3)

/* connect / probe check of slot s (only slots with a record): 0 = fine (nil or already there), 1 = lost, 2 = ahead */
#define PV(d, s) (mrec[2*(d)+(s)] == 0 -> 0 : \
  (rm[s] == 0 -> ((BASE(d, s) > 0 && LOSTCHECK) -> 1 : 0) : \
  ((cpos[d] < rm[s] && MUTANT != 4) -> 2 : \
  (cpos[d] == rm[s] -> 0 : \
  ((LOSTCHECK && BASE(d, s) > 0 && rm[s] < BASE(d, s)) -> 1 : 0)))))
#define PWHOLE(d) ((recmiss[d] && ack[d] > 0) || PV(d, 0) == 1 || PV(d, 1) == 1)
#define PAHEAD(d) (PV(d, 1) == 2 -> rm[1] : (PV(d, 0) == 2 -> rm[0] : 0))   /* join: max, markers ahead */
#define PJOIN(d) ((PV(d, 0) == 2 && PV(d, 1) == 2) -> (rm[0] > rm[1] -> rm[0] : rm[1]) : PAHEAD(d))

/* write fence of slot s: 0 = write, 1 = already there, 2 = ahead, 3 = whole view needed */
#define WV(d, s) (rm[s] == 0 -> ((wfull[d] || BASE(d, s) == 0 || !LOSTCHECK) -> 0 : 3) : \
  ((wpos[d] < rm[s] && MUTANT != 4) -> 2 : \
  (wpos[d] == rm[s] -> 1 : \
  ((!wfull[d] && LOSTCHECK && BASE(d, s) > 0 && rm[s] < BASE(d, s)) -> 3 : 0))))

/* the full check after a write (check(afterWrite): progress = the write's, slots in the record): 1 = lost */
#define FV(d, s) (mrec[2*(d)+(s)] == 0 -> 0 : \
  (rm[s] == 0 -> ((BASE(d, s) > 0 && LOSTCHECK) -> 1 : 0) : \
  (wpos[d] <= rm[s] -> 0 : \
  ((LOSTCHECK && BASE(d, s) > 0 && rm[s] < BASE(d, s)) -> 1 : 0))))

/* P5: a "slot lost data" verdict only about a slot that did lose data */
inline p5(s) {
#if CHECKP5
  assert(lossOf[s] > 0)
#else
  skip
#endif
}

inline reach(n) {
  if :: REACH == n -> assert(0) :: else fi
}

/* P4: a slot's key holds its value at the slot marker's progress (per-slot atomicity, the base of exactness) */
#define P4(s) assert(rv[s] == valAt(s, rm[s]))

/* ---------------- sink machine ---------------- */

inline nextWrite(d) {
  if
  :: waitp[d] > 0 && cpos[d] < waitp[d] -> st[d] = IDLE       /* behind another writer's marker: wait */
  :: else ->
     waitp[d] = 0;
     if
     :: needfull[d] -> st[d] = RENDERING
     :: else ->
        if
        :: (pv0[d] > 0 || pv1[d] > 0 || ack[d] < cpos[d]) ->
           wv0[d] = pv0[d]; wv1[d] = pv1[d]; pv0[d] = 0; pv1[d] = 0; pe0[d] = 0; pe1[d] = 0;
           wpos[d] = cpos[d]; wfull[d] = 0; wcas[d] = 0; wahead[d] = 0;
           ws[2*d] = (wv0[d] > 0 -> WS_READ : WS_NONE); ws[2*d+1] = (wv1[d] > 0 -> WS_READ : WS_NONE);
           st[d] = WRITING
        :: else -> st[d] = IDLE
        fi
     fi
  fi
}

/* the unsent pairs go back under anything newer (writeFailed / writeRefused); a whole view is rendered again */
inline putBack(d) {
  if
  :: wfull[d] -> needfull[d] = 1
  :: else ->
     if :: wv0[d] > 0 && pv0[d] == 0 -> pv0[d] = wv0[d]; pe0[d] = wpos[d] :: else fi;
     if :: wv1[d] > 0 && pv1[d] == 0 -> pv1[d] = wv1[d]; pe1[d] = wpos[d] :: else fi
  fi;
  wv0[d] = 0; wv1[d] = 0; ws[2*d] = 0; ws[2*d+1] = 0; wexp[2*d] = 0; wexp[2*d+1] = 0; wcas[d] = 0; wahead[d] = 0
}

/* connect / probe: what the fence says of every slot with a record (RedisClusterSinkTransport.check) -> observe */
inline observeCheck(d) {
  if
  :: PWHOLE(d) ->
     if :: recmiss[d] && ack[d] > 0 -> reach(7) :: else fi;
     if :: (rm[0] > 0 && PV(d, 0) == 1) || (rm[1] > 0 && PV(d, 1) == 1) -> reach(1) :: else fi;
     if :: PV(d, 0) == 1 -> p5(0) :: else fi;
     if :: PV(d, 1) == 1 -> p5(1) :: else fi;
     needfull[d] = 1
  :: else ->
     if :: PJOIN(d) > 0 -> waitp[d] = PJOIN(d) :: else fi
  fi
}

/* P1: a reader never sees a present value smaller than one seen before (since the slot's last loss if !STRONG) */
inline setValue(s, v) {
  assert(v >= hi[s]);
  rv[s] = v; hi[s] = v
}

/* one slot's compare-and-set script applies (marker == what was read) */
inline applySlot(d, s, v) {
  assert(rm[s] == 0 || wpos[d] >= rm[s]);          /* P3: a slot's marker never goes backwards but by a loss */
  setValue(s, v); rm[s] = wpos[d];
  P4(s);
  if                                                 /* asynchronous replication: the replica may catch up now */
  :: (LOSSKIND & 2) && losses < LOSSES && !quiet -> repv[s] = rv[s]; repm[s] = rm[s]
  :: true                                            /* or it lags */
  fi
}

/* ---------------- start-up (PipelineRunner.run, RedisClusterSinkTransport.init, SinkStateMachine.init) ---------- */
inline start(d) {
  moff[d] = (Lpos[d] == 0 -> 0 : Lpos[d] - 1);
  cpos[d] = Lpos[d];
  mc0[d] = Lc0[d]; mc1[d] = Lc1[d]; d0[d] = 0; d1[d] = 0;
  ack[d] = Lack[d]; needfull[d] = (Lpos[d] > Lack[d]);
  pv0[d] = 0; pv1[d] = 0; pe0[d] = 0; pe1[d] = 0; waitp[d] = 0;
  mrec[2*d] = Lrec[2*d]; mrec[2*d+1] = Lrec[2*d+1];
  recmiss[d] = (Lack[d] > 0 && Lrec[2*d] == 0 && Lrec[2*d+1] == 0);
  q[d] = 0; qs[2*d] = 0; qs[2*d+1] = 0;
  wv0[d] = 0; wv1[d] = 0; wpos[d] = 0; wfull[d] = 0; ws[2*d] = 0; ws[2*d+1] = 0; wexp[2*d] = 0; wexp[2*d+1] = 0;
  wcas[d] = 0; wahead[d] = 0;
  st[d] = CONNECTING
}

inline copyStore() {
  Lpos[1] = Lpos[0]; Lc0[1] = Lc0[0]; Lc1[1] = Lc1[0]; Lack[1] = Lack[0]; Lrec[2] = Lrec[0]; Lrec[3] = Lrec[1]
}

/* nothing left to do, and a probe would find nothing */
#define settled(d) (st[d] == DOWN || \
   (st[d] == IDLE && moff[d] == NMSG && cpos[d] == FINAL && !needfull[d] && pv0[d] == 0 && pv1[d] == 0 && \
    ack[d] == cpos[d] && waitp[d] == 0 && q[d] == 0 && !PWHOLE(d) && PJOIN(d) == 0))

/* a slot loses data: its master restarts empty, or fails over to a replica that missed the last writes */
inline lose(s) {
  lossOf[s]++; losses++;
  if
  :: losses >= LOSSES -> repv[0] = 0; repm[0] = 0; repv[1] = 0; repm[1] = 0
  :: else -> repv[s] = rv[s]; repm[s] = rm[s]     /* the replica resynchronises from the (new) master */
  fi;
  printf("MSC: slot %d lost data: key %d, marker %d\n", s, rv[s], rm[s]);
#if !STRONG
  hi[s] = rv[s];
#endif
  P4(s)
}

init {
  atomic {
    st[1] = DOWN;
    start(0)
  }
  do
#define D 0
#include "daemon.pml"
#undef D
#if ZOMBIE
#define D 1
#include "daemon.pml"
#undef D
  /* the operator copies A's state directory (at any moment) ... */
  :: atomic { !quiet && !copied -> copied = 1; copyStore();
       printf("MSC: operator copies A's state dir (pos %d, acked %d, slot records %d %d)\n", Lpos[0], Lack[0], Lrec[0], Lrec[1]) }
  /* ... and later starts B from the copy (A may be paused, or still running) */
  :: atomic { !quiet && copied && !bstarted -> bstarted = 1; start(1);
       printf("MSC: operator starts B from the copy\n") }
#endif
  /* slot s loses data */
  :: atomic { !quiet && losses < LOSSES && (LOSSKIND & 1) && (rm[0] > 0 || rv[0] > 0) ->
       rv[0] = 0; rm[0] = 0; lose(0) }
  :: atomic { !quiet && losses < LOSSES && (LOSSKIND & 1) && (rm[1] > 0 || rv[1] > 0) ->
       rv[1] = 0; rm[1] = 0; lose(1) }
  :: atomic { !quiet && losses < LOSSES && (LOSSKIND & 2) && rm[0] != repm[0] ->
       rv[0] = repv[0]; rm[0] = repm[0]; lose(0) }
  :: atomic { !quiet && losses < LOSSES && (LOSSKIND & 2) && rm[1] != repm[1] ->
       rv[1] = repv[1]; rm[1] = repm[1]; lose(1) }
  :: atomic { !quiet -> quiet = 1; repv[0] = 0; repm[0] = 0; repv[1] = 0; repm[1] = 0 }
  /* P2: input exhausted, no faults pending, everything settled */
  :: atomic { quiet && settled(0) && settled(1) -> break }
  od;
  reach(6);
  /* P2a: every started daemon still runs (the cluster sink never stops itself) */
  assert(running(0) && (!bstarted || running(1)));
  /* P2b: Redis equals the true counts (key 1: m1 only, key 0: all others) */
  assert(rv[0] == NMSG - 1 && rv[1] == 1)
}
