/*
 * sink.pml -- SPIN model of Eddy's exactly-once Redis sink (DESIGN §3).
 *
 * Mirrors (the project's sources):
 *   Sources/EddyEngine/Sink/SinkStateMachine.swift   (connected, probed, checkpointCommitted,
 *                                                     fullViewRendered, writeSucceeded, writeRefusedAsStale,
 *                                                     writeFoundRedisBehind, writeFailed, nextWrite)
 *   Sources/EddyEngine/Sink/SinkDriver.swift         (ack recorded in LMDB after EXEC / own-stale, before the machine)
 *   Sources/EddyRedis/RedisEpochWriter.swift         (WATCH+GET, fence, MULTI..EXEC, nil EXEC -> read again)
 *   Sources/EddyEngine/Pipeline/CheckpointThread.swift (one LMDB txn, then sink.checkpointCommitted under commitLock)
 *   Sources/EddyEngine/Pipeline/PipelineRunner.swift (restore, start-up checkpoint, resume at stored offsets)
 *
 * One process runs guarded atomic actions; each action is one step of one thread of one daemon
 * (hot loop, checkpoint thread, sink thread) or of the environment (crash+restart, Redis flush, copy of the
 * state directory, start of daemon B).  Crashes can fall between any two actions, so they cover:
 * between LMDB commit and the Redis write, between WATCH/GET and MULTI/EXEC, between EXEC and the ack record.
 *
 * Build-time switches (spin -DNAME=value -a sink.pml):
 *   FIX      0 = code as it is (epoch-only fence)
 *            1 = naive fencing token: INCR gen at start, every write WATCHes marker+gen and needs gen == own,
 *                a refused writer stops (nothing persisted)
 *            2 = recommended token (see README): claim = CAS gen := own+1 only if gen <= own and marker <= own
 *                committed epoch; gen > own => superseded, persisted in the store; gen < own (lost) => restore own
 *                gen with a full-view write
 *            3 = token + "epochs continue from max(marker, own)" at claim (no stop for a store older than Redis)
 *            4 = progress fence: the marker also records the source offset of the written checkpoint; a write
 *                applies only if its offset >= the marker's (== : same state, taken as success without writing);
 *                a writer behind the marker keeps consuming and stays pending until its committed offset reaches
 *                the marker's; absent marker / marker offset < acked offset => full view.  No generation token.
 *            5 = 4 + the FIX=2 generation token (claim without the "older than Redis" refusal; the offset fence
 *                also guards the restore after data loss)
 *   ZOMBIE   1 = a copy of A's state directory is taken at any moment and daemon B started from it later
 *            2 = the same, but the copy is taken only when A is fully acknowledged (its epoch == Redis' marker >= 2)
 *   CRASHES  crash+restart budget (any daemon, any moment, a stopped daemon too when SUPERVISOR)
 *   FLUSHES  Redis data-loss budget (FLUSHALL / restart without persistence: values, marker, gen gone)
 *   LOST     budget of failed EXECs (reply lost after Redis applied it, or connection broken before EXEC)
 *   STRONG   1 = P1 compares with the largest value ever present, across flushes
 *   SUPERVISOR 1 = a stopped daemon may be restarted (systemd Restart=always), 0 = stopped is final
 *   CLOCK    1 = temporal filters (docs/model/README.md, "Temporal filters"): the clock is a second input.  Each
 *            daemon has a clock mt (0..TMAX, advanced by its own *tick* action, restored from its checkpoint's time
 *            at every start, a copy's time for B); each epoch takes time mt, stored atomically with the counts and
 *            the offset; message i is visible while the time is < EXPi; a key's value = its visible consumed
 *            messages (goes DOWN as time passes; 0 = the row left the view = the key is deleted in Redis).  The
 *            state kept is the operator's: the held messages (an expired one is dropped for good).  An epoch is
 *            cut for new messages, or with none when the clock reaches the expiry of a held message.  The marker
 *            and the acknowledgement carry (offset, time), compared component-wise by the fence (FIX >= 4 only).
 *   TMAX     CLOCK: ticks per daemon (its clock runs Lt..TMAX)
 *   EXP0..3  CLOCK: expiry time of message i (visible while time < EXPi; 9 = never within TMAX)
 *   FULLDEL  CLOCK: 1 = a whole-view write also deletes the keys absent from the view (the code before TOMB: only
 *            SETs rows)
 *   TOMB     CLOCK: 1 = tombstones (the code: `Tombstones`): each checkpoint keeps in LMDB, per key, the epoch that
 *            deleted it, and drops those at or below the acknowledged epoch stored in LMDB; a whole-view write also
 *            deletes the keys with a tombstone that the view does not hold
 *   DELTAEQ  CLOCK: 1 = a delta applies only on top of a marker equal to its base (else the whole view)
 *   TOUCHED  CLOCK: 1 = an epoch's pairs are the keys it touched (a message or an expiry), not only those whose
 *            value changed (the cascade's aggregates emit net changes: a key back at its old value emits nothing)
 *   MUTANT   (CLOCK) 3 = the fence ignores the time component, 4 = a restart takes the wall clock (0) behind the
 *            checkpoint's time for its epochs (`now` not restored monotone), 5 (TOMB) = each checkpoint keeps only
 *            its own epoch's tombstones
 */

#ifndef FIX
#define FIX 0
#endif
#ifndef ZOMBIE
#define ZOMBIE 0
#endif
#ifndef CRASHES
#define CRASHES 2
#endif
#ifndef FLUSHES
#define FLUSHES 1
#endif
#ifndef LOST
#define LOST 1
#endif
#ifndef STRONG
#define STRONG 1
#endif
#ifndef CHECKP2
#define CHECKP2 1
#endif
#ifndef SUPERVISOR
#define SUPERVISOR 1
#endif

#ifndef MUTANT
#define MUTANT 0        /* FIX >= 4 sanity mutants: 1 = no "marker ahead" check, 2 = no "behind the ack" check */
#endif
#ifndef REACH
#define REACH 0         /* 1: assert that the writers never alternate A,B,A / B,A,B (a trail shows they do) */
#endif

#ifndef CLOCK
#define CLOCK 0
#endif
#ifndef TMAX
#define TMAX 2
#endif
#ifndef EXP0
#define EXP0 1          /* m0 (key 0) leaves the view at time 1 */
#endif
#ifndef EXP1
#define EXP1 2          /* m1 (key 1) at time 2: key 1 is deleted then */
#endif
#ifndef EXP2
#define EXP2 9          /* m2, m3: never within TMAX */
#endif
#ifndef EXP3
#define EXP3 9
#endif
#ifndef FULLDEL
#define FULLDEL 0
#endif
#ifndef TOMB
#define TOMB 0
#endif
#ifndef DELTAEQ
#define DELTAEQ 0
#endif
#ifndef TOUCHED
#define TOUCHED 0
#endif

#ifndef NMSG
#define NMSG 3          /* messages m0 m1 m2 ...: keys 0, 1, 0, 0, ... */
#endif
#define NONE 255        /* no offsets stored yet */

/* daemon / sink states */
#define DOWN       0    /* not started (B before the operator starts it) */
#define CLAIMING   1    /* fencing-token claim at start-up (FIX >= 1) */
#define CONNECTING 2
#define IDLE       3
#define RENDERING  4
#define WRITING    5
#define STOPPED    6    /* sink stopped => pipeline exits */

#define key(i) ((i) == 1 -> 1 : 0)

#if CLOCK
#define expt(i) ((i) == 0 -> EXP0 : ((i) == 1 -> EXP1 : ((i) == 2 -> EXP2 : EXP3)))
/* the view: key k at (offset o, time t) = consumed messages of k still visible at t */
#define vis(i,k,o,t) (((i) < (o) && key(i) == (k) && expt(i) > (t)) -> 1 : 0)
#define view(k,o,t) (vis(0,k,o,t) + vis(1,k,o,t) + vis(2,k,o,t) + vis(3,k,o,t))
/* a held set (bit i = message i held): its count for key k; the messages of a set expired at time t */
#define hb(h,i,k) (((((h) >> (i)) & 1) == 1 && key(i) == (k)) -> 1 : 0)
#define cntm(k,h) (hb(h,0,k) + hb(h,1,k) + hb(h,2,k) + hb(h,3,k))
#define em(i,t) (expt(i) <= (t) -> (1 << (i)) : 0)
#define expmask(t) (em(0,t) | em(1,t) | em(2,t) | em(3,t))
#define msgmask(a,b) ((1 << (b)) - (1 << (a)))       /* messages a..b-1 */
#if MUTANT == 3
#define tgt(a,b) (0)            /* mutant: the fence ignores the time component */
#define teq(a,b) (1)
#else
#define tgt(a,b) ((a) > (b))
#define teq(a,b) ((a) == (b))
#endif
#endif

/* ---------------- Redis ---------------- */
byte rv[2];             /* values, 0 = absent (a present count is >= 1) */
byte rmark;             /* eddy:<sink>:epoch, 0 = absent */
byte rgen;              /* generation (FIX >= 1), 0 = absent */
byte rmoff;             /* FIX >= 4: source offset recorded in the marker (meaningful only while rmark > 0) */
bool wok[2];            /* daemon d's WATCH still clean */
byte hi[2];             /* P1/P3: largest value present so far (since the last flush unless STRONG) */
#if CLOCK
byte rt;                /* time recorded in the marker (meaningful only while rmark > 0) */
byte hmo; byte hmt;     /* largest marker offset / time shown so far (since the last flush unless STRONG) */
#endif

/* ---------------- LMDB, per daemon (durable) ---------------- */
byte Lep[2];            /* newest committed epoch */
byte Loff[2];           /* stored next offset, NONE = no offsets */
byte Lc0[2]; byte Lc1[2];   /* aggregate counts of key 0 / key 1 */
byte Lack[2];           /* acknowledged epoch */
byte Lgen[2];           /* own generation (FIX >= 1) */
bool Lfenced[2];        /* FIX 2: refused for good, persisted */
byte Lackoff[2];        /* FIX >= 4: offset of the acknowledged epoch */
#if CLOCK
byte Lt[2];             /* time of the newest committed epoch (@now/0, committed with the offsets) */
byte Lh[2];             /* held messages (the temporal filter's state) */
byte Lackt[2];          /* time of the acknowledged epoch */
byte Ltb0[2]; byte Ltb1[2];   /* TOMB: the epoch that deleted key 0 / key 1, kept until acknowledged (0 = none) */
#endif

/* ---------------- memory, per daemon ---------------- */
byte st[2];
byte moff[2]; byte chk[2];          /* next offset; offsets at the last checkpoint (NONE before the first) */
byte mc0[2]; byte mc1[2]; bool d0[2]; bool d1[2];   /* counts, dirty bits */
byte committed[2]; byte ack[2]; bool needfull[2];
byte pv0[2]; byte pv1[2]; byte pe0[2]; byte pe1[2]; /* pending value (0 = none) and its epoch */
byte wep[2]; byte wmin[2]; byte wv0[2]; byte wv1[2]; byte wph[2]; bool wfull[2];
        /* write in flight: epoch, minimumMarker, pairs (0 = not in the write),
           phase 0 = WATCH/GET next, 1 = MULTI/EXEC next, 2 = applied (or own-stale): ack record next */
byte mygen[2];
byte woff[2]; byte wminoff[2];      /* FIX >= 4: offset of the write's checkpoint; offset of the ack it builds on */
byte ackoff[2];                     /* FIX >= 4: offset of the acknowledged epoch */
byte waitoff[2];                    /* FIX >= 4: marker offset this sink waits to reach (0 = not waiting) */
#if CLOCK
byte mt[2];                         /* the daemon's clock: the next epoch's time */
byte ct[2];                         /* time of the last checkpoint (the sink's committed time) */
byte ot[2];                         /* the operator's time (TemporalFilterOperator.now: max of its epochs') */
byte mh[2];                         /* held messages as of the last checkpoint */
byte wt[2]; byte wmint[2];          /* time of the write's checkpoint; time of the ack it builds on */
byte ackt[2];                       /* time of the acknowledged epoch */
byte waitt[2];                      /* marker time this sink waits to reach */
byte tch;                           /* TOUCHED: scratch of the checkpoint step (always 0 between steps) */
#endif

byte crashes; byte flushes; byte lost;
bool quiet;             /* no more faults from here on (P2 is checked once everything settles) */
bool copied; bool bstarted;
#if REACH
byte lastw; byte alt;   /* last daemon that applied an EXEC (+1), number of writer changes */
#endif

/* ---------------- sink machine ---------------- */

#define cof(d) (chk[d] == NONE -> 0 : chk[d])     /* offset of the committed epoch */

inline nextWrite(d) {
#if FIX >= 4
  if
#if CLOCK
  :: waitoff[d] > cof(d) || waitt[d] > ct[d] -> st[d] = IDLE   /* Redis is ahead of this state: stay pending */
#else
  :: waitoff[d] > cof(d) -> st[d] = IDLE           /* Redis is ahead of this state: stay pending */
#endif
  :: else ->
#endif
  if
  :: needfull[d] -> wph[d] = 0; st[d] = RENDERING
  :: else ->
     if
     :: (pv0[d] > 0 || pv1[d] > 0 || ack[d] < committed[d]) ->
        wv0[d] = pv0[d]; wv1[d] = pv1[d]; pv0[d] = 0; pv1[d] = 0; pe0[d] = 0; pe1[d] = 0;
        wep[d] = committed[d]; wmin[d] = ack[d]; wfull[d] = 0; wph[d] = 0; st[d] = WRITING
#if FIX >= 4
        ; woff[d] = chk[d]; wminoff[d] = ackoff[d]
#endif
#if CLOCK
        ; wt[d] = ct[d]; wmint[d] = ackt[d]
#endif
     :: else -> st[d] = IDLE
     fi
  fi
#if FIX >= 4
  fi
#endif
}

/* the unsent pairs go back under anything newer (writeFailed / writeFoundRedisBehind) */
inline putBack(d) {
  if :: wv0[d] > 0 && pv0[d] == 0 -> pv0[d] = wv0[d]; pe0[d] = wep[d] :: else fi;
  if :: wv1[d] > 0 && pv1[d] == 0 -> pv1[d] = wv1[d]; pe1[d] = wep[d] :: else fi;
  wv0[d] = 0; wv1[d] = 0; wph[d] = 0
}

inline stop(d) { st[d] = STOPPED; wph[d] = 0; wok[d] = 0; printf("MSC: %c stops\n", 'A'+d) }

inline fenced(d) {          /* refused by the generation */
#if FIX == 2 || FIX == 5
  Lfenced[d] = 1;
#endif
  stop(d)
}

/* P1/P3: a reader never sees a present value smaller than one seen before */
inline setValue(k, v) {
#if CLOCK
  /* CLOCK: v = value + 1 (1 = delete: the row left the view); values may legitimately go down */
  if :: v > 0 -> rv[k] = v - 1 :: else fi
#else
  if
  :: v > 0 ->
     assert(v >= hi[k]);
     rv[k] = v; hi[k] = v
  :: else
  fi
#endif
}

#if CLOCK
/* P1/P3 with the clock, after every applied EXEC: (a) the marker's progress never moves back on any component
   (since the last flush unless STRONG); (b) Redis shows the view at the marker's progress: every key before any
   flush (absent = 0), every present key after one (weak form) */
inline checkClock(d) {
  assert(woff[d] >= hmo && wt[d] >= hmt);
  hmo = woff[d]; hmt = wt[d];
  assert((rv[0] == 0 && flushes > 0) || rv[0] == view(0, rmoff, rt));
  assert((rv[1] == 0 && flushes > 0) || rv[1] == view(1, rmoff, rt))
}
#endif

inline redisApply(d) {
  setValue(0, wv0[d]); setValue(1, wv1[d]);
  rmark = wep[d];
#if REACH
  if :: lastw != d + 1 -> if :: lastw != 0 -> alt++ :: else fi; lastw = d + 1 :: else fi;
#endif
#if FIX >= 4
  rmoff = woff[d];
#endif
#if CLOCK
  rt = wt[d]; checkClock(d);
#endif
#if FIX == 2 || FIX == 5
  rgen = mygen[d];        /* SET gen own: a no-op unless restoring after data loss */
#endif
  wok[0] = 0; wok[1] = 0  /* the marker changed: every WATCH on it is dirty */
}

/* ---------------- start-up (PipelineRunner.run) ---------------- */
inline start(d) {
  if :: Loff[d] == NONE -> moff[d] = 0 :: else -> moff[d] = Loff[d] fi;
  chk[d] = Loff[d];
  mc0[d] = Lc0[d]; mc1[d] = Lc1[d]; d0[d] = 0; d1[d] = 0;
  committed[d] = Lep[d]; ack[d] = Lack[d]; needfull[d] = (Lep[d] > Lack[d]);
  pv0[d] = 0; pv1[d] = 0; pe0[d] = 0; pe1[d] = 0;
  wv0[d] = 0; wv1[d] = 0; wph[d] = 0; wfull[d] = 0; wok[d] = 0; mygen[d] = 0;
  ackoff[d] = Lackoff[d]; waitoff[d] = 0;
#if CLOCK
  ct[d] = Lt[d]; ot[d] = Lt[d]; mh[d] = Lh[d]; ackt[d] = Lackt[d]; waitt[d] = 0;
#if MUTANT == 4
  mt[d] = 0;            /* mutant: the epochs take the wall clock, behind the checkpoint's time */
#else
  mt[d] = Lt[d];        /* now = max(checkpoint's time, wall clock): a wall clock ahead = ticks after the start */
#endif
#endif
#if FIX == 0 || FIX == 4
  st[d] = CONNECTING
#else
  st[d] = CLAIMING
#endif
}

inline copyStore() {
  Lep[1] = Lep[0]; Loff[1] = Loff[0]; Lc0[1] = Lc0[0]; Lc1[1] = Lc1[0];
  Lack[1] = Lack[0]; Lgen[1] = Lgen[0]; Lfenced[1] = Lfenced[0]; Lackoff[1] = Lackoff[0]
#if CLOCK
  ; Lt[1] = Lt[0]; Lh[1] = Lh[0]; Lackt[1] = Lackt[0]; Ltb0[1] = Ltb0[0]; Ltb1[1] = Ltb1[0]
#endif
}

#define running(d)  (st[d] != DOWN && st[d] != STOPPED && st[d] != CLAIMING)

/* nothing left to do, and a probe would find nothing */
#if CLOCK
/* also: the clock has run out, no held message left to expire before it, the marker at this daemon's time */
#define settled(d) (st[d] == DOWN || st[d] == STOPPED || \
   (moff[d] == NMSG && chk[d] == NMSG && mt[d] == TMAX && (mh[d] & expmask(mt[d])) == 0 && st[d] == IDLE && \
    !needfull[d] && pv0[d] == 0 && pv1[d] == 0 && \
    ack[d] == committed[d] && rmark > 0 && rmoff == NMSG && rt == ct[d] && (FIX == 4 || rgen == mygen[d])))
#elif FIX >= 4
#define settled(d) (st[d] == DOWN || st[d] == STOPPED || \
   (moff[d] == NMSG && chk[d] == NMSG && st[d] == IDLE && !needfull[d] && pv0[d] == 0 && pv1[d] == 0 && \
    ack[d] == committed[d] && rmark > 0 && rmoff == NMSG && (FIX == 4 || rgen == mygen[d])))
#else
#define settled(d) (st[d] == DOWN || st[d] == STOPPED || \
   (moff[d] == NMSG && chk[d] == NMSG && st[d] == IDLE && !needfull[d] && pv0[d] == 0 && pv1[d] == 0 && \
    ack[d] == committed[d] && rmark >= ack[d] && rmark <= committed[d] && (FIX == 0 || rgen == mygen[d])))
#endif

#if CLOCK && FIX < 4
#error "CLOCK=1 models the progress fence: use FIX=4 or 5"
#endif

init {
  atomic {
    Loff[0] = NONE; Loff[1] = NONE;
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
  :: atomic { !quiet && !copied && (ZOMBIE != 2 || (Lep[0] == Lack[0] && rmark == Lep[0] && Lep[0] >= 2)) -> copied = 1; copyStore();
       printf("MSC: operator copies A's state dir (epoch %d, acked %d, offset %d, gen %d)\n", Lep[0], Lack[0], Loff[0], Lgen[0]) }
  /* ... and later starts B from the copy (A may be paused, or still running) */
  :: atomic { !quiet && copied && !bstarted -> bstarted = 1; start(1);
       printf("MSC: operator starts B from the copy\n") }
#endif
  /* Redis loses everything: FLUSHALL, or a restart without persistence */
  :: atomic { !quiet && flushes < FLUSHES ->
       printf("MSC: Redis loses all data (flush)\n");
       flushes++; rv[0] = 0; rv[1] = 0; rmark = 0; rmoff = 0; rgen = 0; wok[0] = 0; wok[1] = 0;
#if CLOCK
       rt = 0;
#if !STRONG
       hmo = 0; hmt = 0;
#endif
#endif
#if !STRONG
       hi[0] = 0; hi[1] = 0
#endif
     }
  :: atomic { !quiet -> quiet = 1 }
  /* P2: input exhausted, no faults pending, everything settled */
  :: atomic { quiet && settled(0) && settled(1) -> break }
  od;
#if REACH
  assert(alt < 2);
#endif
#if CHECKP2
  /* P2a: some daemon still runs (the sink did not stop for good) */
  assert(running(0) || running(1));
#if FIX == 4
  /* FIX=4 never stops a daemon: every started daemon is still a live writer, settled at offset NMSG */
  assert(running(0) && (!bstarted || running(1)));
#endif
#if CLOCK
  /* P2b: Redis equals the view at the end of the input and of the clock (absent = 0) */
  assert(rmoff == NMSG && rv[0] == view(0, NMSG, TMAX) && rv[1] == view(1, NMSG, TMAX))
#else
  /* P2b: Redis equals the true counts (key 1: message m1 only, key 0: all others) */
  assert(rv[0] == NMSG - 1 && rv[1] == 1)
#endif
#endif
}
