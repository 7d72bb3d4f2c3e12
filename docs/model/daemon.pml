/*
 * daemon.pml -- the guarded atomic actions of daemon D (0 = A, 1 = B); #included by sink.pml once per
 * daemon with D defined.  Each `::` option is one step of one thread of the daemon.
 */
  /* hot loop: consume one message */
  :: atomic { running(D) && chk[D] != NONE && moff[D] < NMSG ->
#if CLOCK
       moff[D]++;          /* the temporal filter runs at the barrier, on the checkpoint thread (Cascade) */
       printf("MSC: %c consumes m%d\n", 'A'+D, moff[D]-1) }
#else
       if
       :: key(moff[D]) == 0 -> mc0[D]++; d0[D] = 1
       :: else -> mc1[D]++; d1[D] = 1
       fi;
       moff[D]++;
       printf("MSC: %c consumes m%d -> counts (%d,%d) in memory\n", 'A'+D, moff[D]-1, mc0[D], mc1[D]) }
#endif

#if CLOCK
  /* the clock advances (wall time; bounded) */
  :: atomic { running(D) && mt[D] < TMAX -> mt[D]++; printf("MSC: %c's clock reads %d\n", 'A'+D, mt[D]) }

  /* checkpoint (checkpointNow + CheckpointThread.commit): cut for new messages, or with none when the clock has
     reached the expiry of a held message; the temporal filter applies the epoch's time; one LMDB transaction
     (held rows, counts, offset, time, epoch), then sink.checkpointCommitted with the keys whose value changed */
  :: atomic { running(D) && (moff[D] != chk[D] || (mh[D] & expmask(mt[D])) != 0) ->
       Lep[D]++;
       if :: mt[D] > ot[D] -> ot[D] = mt[D] :: else fi;          /* the operator's now never goes back */
#if TOUCHED
       tch = msgmask(cof(D), moff[D]) | (mh[D] & expmask(ot[D]));      /* messages touched */
#endif
       mh[D] = (mh[D] | msgmask(cof(D), moff[D])) & (15 - expmask(ot[D]));
       if :: cntm(0, mh[D]) != mc0[D] || (TOUCHED && cntm(0, tch) > 0) ->
                mc0[D] = cntm(0, mh[D]); pv0[D] = mc0[D] + 1; pe0[D] = Lep[D]
          :: else fi;
       if :: cntm(1, mh[D]) != mc1[D] || (TOUCHED && cntm(1, tch) > 0) ->
                mc1[D] = cntm(1, mh[D]); pv1[D] = mc1[D] + 1; pe1[D] = Lep[D]
          :: else fi;
#if TOUCHED
       tch = 0;
#endif
#if TOMB
       /* tombstones, in the same transaction: drop those of epochs LMDB records as acknowledged, keep this
          epoch's deletes (a pair set now with value 0, i.e. pv = 1) */
       if :: Ltb0[D] > 0 && (Ltb0[D] <= Lack[D] || MUTANT == 5) -> Ltb0[D] = 0 :: else fi;
       if :: Ltb1[D] > 0 && (Ltb1[D] <= Lack[D] || MUTANT == 5) -> Ltb1[D] = 0 :: else fi;
       if :: pe0[D] == Lep[D] && pv0[D] == 1 -> Ltb0[D] = Lep[D] :: else fi;
       if :: pe1[D] == Lep[D] && pv1[D] == 1 -> Ltb1[D] = Lep[D] :: else fi;
#endif
       Loff[D] = moff[D]; Lc0[D] = mc0[D]; Lc1[D] = mc1[D]; Lh[D] = mh[D]; Lt[D] = mt[D];
       committed[D] = Lep[D]; chk[D] = moff[D]; ct[D] = mt[D];
       printf("MSC: %c commits epoch %d to LMDB: offset %d time %d, counts (%d,%d)\n", 'A'+D, Lep[D], Loff[D], Lt[D], Lc0[D], Lc1[D]);
       if :: st[D] == IDLE -> nextWrite(D) :: else fi }
#else
  /* checkpoint: one LMDB transaction (state, offsets, epoch), then sink.checkpointCommitted */
  :: atomic { running(D) && moff[D] != chk[D] ->
       Lep[D]++; Loff[D] = moff[D];
       if :: d0[D] -> Lc0[D] = mc0[D]; pv0[D] = mc0[D]; pe0[D] = Lep[D]; d0[D] = 0 :: else fi;
       if :: d1[D] -> Lc1[D] = mc1[D]; pv1[D] = mc1[D]; pe1[D] = Lep[D]; d1[D] = 0 :: else fi;
       committed[D] = Lep[D]; chk[D] = moff[D];
       printf("MSC: %c commits epoch %d to LMDB: offset %d, counts (%d,%d)\n", 'A'+D, Lep[D], Loff[D], Lc0[D], Lc1[D]);
       if :: st[D] == IDLE -> nextWrite(D) :: else fi }
#endif

#if FIX != 0
  /* claim the sink at start-up */
  :: atomic { st[D] == CLAIMING ->
#if FIX == 1
       rgen++; Lgen[D] = rgen; mygen[D] = rgen; wok[0] = 0; wok[1] = 0; st[D] = CONNECTING;
       printf("MSC: %c claims generation %d\n", 'A'+D, rgen)
#elif FIX == 2
       if
       :: Lfenced[D] || rgen > Lgen[D] -> fenced(D)           /* this store was superseded */
       :: else ->
          if
          :: rmark > Lep[D] -> stop(D);                        /* store older than Redis: no claim */
             printf("MSC: %c refuses to start: Redis marker %d > its epoch %d\n", 'A'+D, rmark, Lep[D])
          :: else -> rgen = Lgen[D] + 1; Lgen[D] = rgen; mygen[D] = rgen;
                     wok[0] = 0; wok[1] = 0; st[D] = CONNECTING;
                     printf("MSC: %c claims generation %d\n", 'A'+D, rgen)
          fi
       fi
#elif FIX == 3
       rgen++; Lgen[D] = rgen; mygen[D] = rgen; wok[0] = 0; wok[1] = 0;
       if
       :: rmark > Lep[D] ->                                   /* continue epochs above the marker */
          Lep[D] = rmark; committed[D] = rmark; needfull[D] = 1;
          printf("MSC: %c claims generation %d and continues at epoch %d\n", 'A'+D, rgen, rmark)
       :: else
       fi;
       st[D] = CONNECTING
#elif FIX == 5
       if
       :: Lfenced[D] || rgen > Lgen[D] -> fenced(D)           /* this store was superseded */
       :: else -> rgen = Lgen[D] + 1; Lgen[D] = rgen; mygen[D] = rgen;   /* no "older than Redis" refusal */
                  wok[0] = 0; wok[1] = 0; st[D] = CONNECTING;
                  printf("MSC: %c claims generation %d\n", 'A'+D, rgen)
       fi
#endif
     }
#endif

  /* sink: connect and read the marker (SinkStateMachine.connected) */
  :: atomic { st[D] == CONNECTING ->
       printf("MSC: %c connects: marker %d gen %d (its committed %d, acked %d, gen %d)\n", 'A'+D, rmark, rgen, committed[D], ack[D], mygen[D]);
#if FIX >= 4
       printf("MSC: %c   marker offset %d (its committed offset %d, acked offset %d)\n", 'A'+D, rmoff, cof(D), ackoff[D]);
#if FIX == 5
       if :: rgen > mygen[D] -> fenced(D) :: else ->
          if :: rgen < mygen[D] && committed[D] > 0 -> needfull[D] = 1 :: else fi;  /* gen lost: restore it */
#endif
#if CLOCK
       printf("MSC: %c   marker time %d (its committed time %d, acked time %d)\n", 'A'+D, rt, ct[D], ackt[D]);
       if :: ack[D] > 0 && (rmark == 0 || rmoff < ackoff[D] || tgt(ackt[D], rt)) -> needfull[D] = 1
          :: else
       fi;
       if :: rmark > 0 && (rmoff > cof(D) || tgt(rt, ct[D])) -> waitoff[D] = rmoff; waitt[D] = rt
          :: else -> waitoff[D] = 0; waitt[D] = 0
       fi;
#else
       if :: ack[D] > 0 && (rmark == 0 || rmoff < ackoff[D]) -> needfull[D] = 1   /* Redis behind the ack */
          :: else
       fi;
       if :: rmark > 0 && rmoff > cof(D) -> waitoff[D] = rmoff  /* Redis ahead: stay pending, keep consuming */
          :: else -> waitoff[D] = 0
       fi;
#endif
       st[D] = IDLE; nextWrite(D)
#if FIX == 5
       fi
#endif
#else
#if FIX == 1 || FIX == 3
       if :: rgen != mygen[D] -> fenced(D) :: else ->
#elif FIX == 2
       if :: rgen > mygen[D] -> fenced(D)
          :: rgen < mygen[D] -> needfull[D] = 1; st[D] = IDLE; nextWrite(D)
          :: else ->
#endif
       if
       :: rmark > committed[D] -> stop(D)
       :: else ->
          if :: rmark < ack[D] -> needfull[D] = 1 :: else fi;
          st[D] = IDLE; nextWrite(D)
       fi
#if FIX != 0
       fi
#endif
#endif
     }

  /* sink: idle probe of the marker (SinkStateMachine.probed) */
  :: atomic { st[D] == IDLE ->
#if FIX >= 4
#if FIX == 5
       if :: rgen > mygen[D] -> fenced(D) :: else ->
          if :: rgen < mygen[D] && committed[D] > 0 -> needfull[D] = 1 :: else fi;
#endif
#if CLOCK
       if :: ack[D] > 0 && (rmark == 0 || rmoff < ackoff[D] || tgt(ackt[D], rt)) -> needfull[D] = 1
          :: else
       fi;
       if :: rmark > 0 && (rmoff > cof(D) || tgt(rt, ct[D])) -> waitoff[D] = rmoff; waitt[D] = rt
          :: else -> waitoff[D] = 0; waitt[D] = 0
       fi;
#else
       if :: ack[D] > 0 && (rmark == 0 || rmoff < ackoff[D]) -> needfull[D] = 1
          :: else
       fi;
       if :: rmark > 0 && rmoff > cof(D) -> waitoff[D] = rmoff
          :: else -> waitoff[D] = 0
       fi;
#endif
       nextWrite(D)
#if FIX == 5
       fi
#endif
#else
#if FIX == 1 || FIX == 3
       if :: rgen != mygen[D] -> fenced(D) :: else ->
#elif FIX == 2
       if :: rgen > mygen[D] -> fenced(D)
          :: rgen < mygen[D] -> needfull[D] = 1; nextWrite(D)
          :: else ->
#endif
       if
       :: rmark > committed[D] -> stop(D)
       :: rmark < ack[D] -> needfull[D] = 1; nextWrite(D)
       :: else -> skip
       fi
#if FIX != 0
       fi
#endif
#endif
     }

  /* sink: render the whole view from the latest checkpoint, under the commit lock (renderFullView hook) */
  :: atomic { st[D] == RENDERING && wph[D] == 0 ->
       wv0[D] = Lc0[D]; wv1[D] = Lc1[D]; wep[D] = Lep[D]; wph[D] = 3;
#if FIX >= 4
       woff[D] = (Loff[D] == NONE -> 0 : Loff[D]);
#endif
#if CLOCK
       /* the rows of the view (value + 1); FULLDEL: every absent key deleted; TOMB: absent keys with a tombstone */
       wv0[D] = (Lc0[D] > 0 || FULLDEL -> Lc0[D] + 1 : (TOMB && Ltb0[D] > 0 -> 1 : 0));
       wv1[D] = (Lc1[D] > 0 || FULLDEL -> Lc1[D] + 1 : (TOMB && Ltb1[D] > 0 -> 1 : 0));
       wt[D] = Lt[D];
#endif
       printf("MSC: %c renders the whole view of epoch %d: (%d,%d)\n", 'A'+D, wep[D], wv0[D], wv1[D]) }

  /* sink: hand it to the machine (fullViewRendered); a checkpoint may have committed in between */
  :: atomic { st[D] == RENDERING && wph[D] == 3 ->
       needfull[D] = 0;
       if :: pv0[D] > 0 && pe0[D] <= wep[D] -> pv0[D] = 0; pe0[D] = 0 :: else fi;
       if :: pv1[D] > 0 && pe1[D] <= wep[D] -> pv1[D] = 0; pe1[D] = 0 :: else fi;
       wmin[D] = 0; wfull[D] = 1; wph[D] = 0; st[D] = WRITING }

  /* sink: WATCH marker (+gen), GET, fence (RedisEpochWriteOutcome.fence) */
  :: atomic { st[D] == WRITING && wph[D] == 0 ->
       wok[D] = 1;
       printf("MSC: %c WATCH+GET for epoch %d (pairs (%d,%d), min %d): marker %d gen %d\n", 'A'+D, wep[D], wv0[D], wv1[D], wmin[D], rmark, rgen);
#if FIX >= 4
       printf("MSC: %c   write offset %d (full %d, acked offset %d): marker offset %d\n", 'A'+D, woff[D], wfull[D], wminoff[D], rmoff);
#if CLOCK
       printf("MSC: %c   write time %d (acked time %d): marker time %d\n", 'A'+D, wt[D], wmint[D], rt);
#endif
#if FIX == 5
       if :: rgen > mygen[D] -> fenced(D)
          :: rgen < mygen[D] && !wfull[D] ->                     /* Redis lost data (gen gone) */
             wok[D] = 0; putBack(D); needfull[D] = 1; nextWrite(D)
          :: else ->
#endif
#if CLOCK
       if
       :: rmark > 0 && (rmoff > woff[D] || tgt(rt, wt[D])) ->    /* Redis ahead on some component: pending */
          printf("MSC: %c   marker (%d,%d) not reached by the write (%d,%d): stays pending\n", 'A'+D, rmoff, rt, woff[D], wt[D]);
          wok[D] = 0; putBack(D); if :: wfull[D] -> needfull[D] = 1 :: else fi;
          waitoff[D] = rmoff; waitt[D] = rt; st[D] = IDLE; nextWrite(D)
       :: rmark > 0 && rmoff == woff[D] && teq(rt, wt[D]) && rgen == mygen[D] ->   /* same progress: same state */
          wph[D] = 2; wok[D] = 0;
          printf("MSC: %c   marker == write progress: same state, acknowledged\n", 'A'+D)
#if DELTAEQ
       :: !wfull[D] && (rmark == 0 -> wmin[D] > 0 : !(wmin[D] > 0 && rmoff == wminoff[D] && rt == wmint[D])) ->
#else
       :: !wfull[D] && wmin[D] > 0 && (rmark == 0 || rmoff < wminoff[D] || tgt(wmint[D], rt)) && MUTANT != 2 ->
#endif
          wok[D] = 0; putBack(D); needfull[D] = 1; nextWrite(D)  /* behind the ack: whole view */
       :: else -> wph[D] = 1
       fi
#else
       if
       :: rmark > 0 && rmoff > woff[D] && MUTANT != 1 ->         /* Redis ahead of this state: pending */
          printf("MSC: %c   marker offset %d > write offset %d: stays pending\n", 'A'+D, rmoff, woff[D]);
          wok[D] = 0; putBack(D); if :: wfull[D] -> needfull[D] = 1 :: else fi;
          waitoff[D] = rmoff; st[D] = IDLE; nextWrite(D)
       :: rmark > 0 && rmoff == woff[D] && rgen == mygen[D] ->   /* same state: idempotent, success */
          wph[D] = 2; wok[D] = 0;
          printf("MSC: %c   marker offset == write offset: same state, acknowledged\n", 'A'+D)
       :: !wfull[D] && wmin[D] > 0 && (rmark == 0 || rmoff < wminoff[D]) && MUTANT != 2 ->   /* behind the ack */
          wok[D] = 0; putBack(D); needfull[D] = 1; nextWrite(D)
       :: else -> wph[D] = 1
       fi
#endif
#if FIX == 5
       fi
#endif
#else
#if FIX == 1 || FIX == 3
       if :: rgen != mygen[D] -> fenced(D) :: else ->
#elif FIX == 2
       if :: rgen > mygen[D] -> fenced(D)
          :: rgen < mygen[D] && wfull[D] -> wph[D] = 1           /* restore: fence skipped, EXEC sets gen */
          :: rgen < mygen[D] && !wfull[D] ->                     /* Redis lost data (gen gone) */
             wok[D] = 0; putBack(D); needfull[D] = 1; nextWrite(D)
          :: else ->
#endif
       if
       :: rmark >= wep[D] ->
          if
          :: rmark == wep[D] -> wph[D] = 2;                      /* "own earlier write": acknowledged */
             printf("MSC: %c   stale, marker == epoch: taken as its own earlier write\n", 'A'+D)
          :: else -> stop(D);                                    /* newer writer */
             printf("MSC: %c   stale: stops\n", 'A'+D)
          fi;
          wok[D] = 0
       :: rmark < wep[D] && rmark < wmin[D] ->                   /* behind: Redis lost data */
          wok[D] = 0; putBack(D); needfull[D] = 1; nextWrite(D)
       :: else -> wph[D] = 1
       fi
#if FIX != 0
       fi
#endif
#endif
     }

  /* sink: MULTI, SETs, SET marker, EXEC */
  :: atomic { st[D] == WRITING && wph[D] == 1 ->
       if
       :: !wok[D] -> wph[D] = 0                                  /* EXEC nil: read the marker again */
       :: wok[D] -> redisApply(D); wph[D] = 2;
          printf("MSC: %c EXEC applied: Redis (%d,%d) marker %d (offset %d) gen %d\n", 'A'+D, rv[0], rv[1], rmark, rmoff, rgen);
#if CLOCK
          printf("MSC: %c   marker time %d; the view there is (%d,%d)\n", 'A'+D, rt, view(0, rmoff, rt), view(1, rmoff, rt))
#else
          skip
#endif
       :: wok[D] && lost < LOST && !quiet ->                     /* applied, reply lost (timeout) */
          lost++; redisApply(D); putBack(D); st[D] = CONNECTING;
          printf("MSC: %c EXEC applied, reply lost: Redis (%d,%d) marker %d (offset %d)\n", 'A'+D, rv[0], rv[1], rmark, rmoff)
       :: lost < LOST && !quiet ->                               /* connection broke before EXEC */
          lost++; putBack(D); st[D] = CONNECTING
       fi;
       wok[D] = 0 }

  /* sink: record the acknowledgement in LMDB (recordAcknowledged never moves back), then writeSucceeded */
  :: atomic { st[D] == WRITING && wph[D] == 2 ->
#if FIX >= 4
#if CLOCK
       if :: wep[D] > Lack[D] -> Lack[D] = wep[D]; Lackoff[D] = woff[D]; Lackt[D] = wt[D] :: else fi;
       ackt[D] = wt[D];
#else
       if :: wep[D] > Lack[D] -> Lack[D] = wep[D]; Lackoff[D] = woff[D] :: else fi;
#endif
       ackoff[D] = woff[D];
#else
       if :: wep[D] > Lack[D] -> Lack[D] = wep[D] :: else fi;
#endif
       printf("MSC: %c records epoch %d acknowledged in LMDB\n", 'A'+D, wep[D]);
       ack[D] = wep[D]; wph[D] = 0; wv0[D] = 0; wv1[D] = 0; st[D] = IDLE; nextWrite(D) }

  /* crash (kill -9) and restart: memory lost, LMDB kept */
  :: atomic { !quiet && crashes < CRASHES && st[D] != DOWN && (SUPERVISOR || st[D] != STOPPED) ->
       crashes++; start(D);
       printf("MSC: %c crashes and restarts from LMDB epoch %d (acked %d), offset %d\n", 'A'+D, Lep[D], Lack[D], moff[D]) }
