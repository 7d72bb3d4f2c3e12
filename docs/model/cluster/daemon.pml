/*
 * daemon.pml -- the guarded atomic actions of daemon D (0 = A, 1 = B); #included by cluster.pml once per
 * daemon with D defined.  Each `::` option is one step of one thread of the daemon.
 */
  /* hot loop: consume one message */
  :: atomic { running(D) && cpos[D] > 0 && moff[D] < NMSG ->
       if
       :: moff[D] == 1 -> mc1[D]++; d1[D] = 1
       :: else -> mc0[D]++; d0[D] = 1
       fi;
       moff[D]++;
       printf("MSC: %c consumes m%d -> counts (%d,%d) in memory\n", 'A'+D, moff[D]-1, mc0[D], mc1[D]) }

  /* checkpoint: one LMDB transaction (state, offsets, epoch), then sink.checkpointCommitted (pairs replace pending) */
  :: atomic { running(D) && cpos[D] != moff[D] + 1 ->
       Lpos[D] = moff[D] + 1;
       if :: d0[D] -> Lc0[D] = mc0[D]; pv0[D] = mc0[D]; pe0[D] = Lpos[D]; d0[D] = 0 :: else fi;
       if :: d1[D] -> Lc1[D] = mc1[D]; pv1[D] = mc1[D]; pe1[D] = Lpos[D]; d1[D] = 0 :: else fi;
       cpos[D] = Lpos[D];
       printf("MSC: %c commits pos %d to LMDB: counts (%d,%d)\n", 'A'+D, Lpos[D], Lc0[D], Lc1[D]);
       if :: st[D] == IDLE -> nextWrite(D) :: else fi }

  /* sink: connect, check every slot with a record against it (connectAndCheck -> connected(check:)) */
  :: atomic { st[D] == CONNECTING ->
       printf("MSC: %c connects: markers %d %d, records %d %d, committed %d, acked %d\n", 'A'+D, rm[0], rm[1], mrec[2*D], mrec[2*D+1], cpos[D], ack[D]);
       observeCheck(D);
       st[D] = IDLE; nextWrite(D) }

  /* sink: idle probe (check -> probed(check:)); enabled only when it would change something (else a no-op) */
  :: atomic { st[D] == IDLE && ((PWHOLE(D) && !needfull[D]) || (!PWHOLE(D) && PJOIN(D) > 0 && PJOIN(D) != waitp[D])) ->
       printf("MSC: %c probe: markers %d %d, records %d %d: %d\n", 'A'+D, rm[0], rm[1], mrec[2*D], mrec[2*D+1], PWHOLE(D));
       observeCheck(D);
       nextWrite(D) }

  /* sink: render the whole view from the latest checkpoint, under the commit lock (renderFullView hook) */
  :: atomic { st[D] == RENDERING ->
       wv0[D] = Lc0[D]; wv1[D] = Lc1[D]; wpos[D] = Lpos[D]; st[D] = RENDERED;
       printf("MSC: %c renders the whole view at pos %d: (%d,%d)\n", 'A'+D, wpos[D], wv0[D], wv1[D]) }

  /* sink: fullViewRendered (a checkpoint may have committed in between): pending through it dropped */
  :: atomic { st[D] == RENDERED ->
       needfull[D] = 0;
       if :: pv0[D] > 0 && pe0[D] <= wpos[D] -> pv0[D] = 0; pe0[D] = 0 :: else fi;
       if :: pv1[D] > 0 && pe1[D] <= wpos[D] -> pv1[D] = 0; pe1[D] = 0 :: else fi;
       wfull[D] = 1; wcas[D] = 0; wahead[D] = 0;
       ws[2*D] = (wv0[D] > 0 -> WS_READ : WS_NONE); ws[2*D+1] = (wv1[D] > 0 -> WS_READ : WS_NONE);
       st[D] = WRITING }

  /* writer, read phase of a round: GET slot 0's marker, fence it against slot 0's own record */
  :: atomic { st[D] == WRITING && !wcas[D] && ws[2*D] == WS_READ ->
       printf("MSC: %c GET marker slot 0 = %d for pos %d (full %d, record %d)\n", 'A'+D, rm[0], wpos[D], wfull[D], mrec[2*D]);
       if
       :: WV(D, 0) == 0 -> ws[2*D] = WS_CAS; wexp[2*D] = rm[0]
       :: WV(D, 0) == 1 -> ws[2*D] = WS_SAME
       :: WV(D, 0) == 2 -> ws[2*D] = WS_AHEAD; if :: rm[0] > wahead[D] -> wahead[D] = rm[0] :: else fi
       :: WV(D, 0) == 3 -> ws[2*D] = WS_WHOLE; p5(0)
       fi;
       if :: ws[2*D+1] != WS_READ -> wcas[D] = (ws[2*D] == WS_CAS || ws[2*D+1] == WS_CAS) :: else fi }

  /* ... then slot 1's (slots in order) */
  :: atomic { st[D] == WRITING && !wcas[D] && ws[2*D] != WS_READ && ws[2*D+1] == WS_READ ->
       printf("MSC: %c GET marker slot 1 = %d for pos %d (full %d, record %d)\n", 'A'+D, rm[1], wpos[D], wfull[D], mrec[2*D+1]);
       if
       :: WV(D, 1) == 0 -> ws[2*D+1] = WS_CAS; wexp[2*D+1] = rm[1]
       :: WV(D, 1) == 1 -> ws[2*D+1] = WS_SAME
       :: WV(D, 1) == 2 -> ws[2*D+1] = WS_AHEAD; if :: rm[1] > wahead[D] -> wahead[D] = rm[1] :: else fi
       :: WV(D, 1) == 3 -> ws[2*D+1] = WS_WHOLE; p5(1)
       fi;
       wcas[D] = (ws[2*D] == WS_CAS || ws[2*D+1] == WS_CAS) }

  /* writer, script phase: slot 0's compare-and-set (EVALSHA), atomic in its slot */
  :: atomic { st[D] == WRITING && wcas[D] && ws[2*D] == WS_CAS ->
       if
       :: rm[0] == wexp[2*D] -> applySlot(D, 0, wv0[D]); ws[2*D] = WS_DONE;
          printf("MSC: %c slot 0 applied: key %d marker %d\n", 'A'+D, rv[0], rm[0]);
#if MUTANT == 2
          if :: ws[2*D+1] == WS_READ || ws[2*D+1] == WS_CAS ->     /* mutant: acknowledged after the first slot */
                if :: q[D] < wpos[D] -> q[D] = wpos[D] :: else fi;
                if :: qs[2*D] <= wpos[D] -> qs[2*D] = wpos[D] :: else fi
             :: else fi;
#endif
          skip
       :: rm[0] != wexp[2*D] -> ws[2*D] = WS_READ                    /* marker moved: read again next round */
       :: rm[0] == wexp[2*D] && lost < LOST && !quiet ->             /* applied, reply lost */
          lost++; applySlot(D, 0, wv0[D]);
          printf("MSC: %c slot 0 applied, reply lost: key %d marker %d\n", 'A'+D, rv[0], rm[0]);
          if
          :: ws[2*D] = WS_READ                                       /* the writer's next round reads it again */
          :: putBack(D); st[D] = CONNECTING                          /* rounds exhausted: writeFailed, reconnect */
          fi
       :: lost < LOST && !quiet ->                                   /* connection broke before the script */
          lost++;
          if
          :: ws[2*D] = WS_READ
          :: putBack(D); st[D] = CONNECTING
          fi
       fi;
       if :: ws[2*D+1] != WS_CAS -> wcas[D] = 0 :: else fi }

  /* ... then slot 1's */
  :: atomic { st[D] == WRITING && wcas[D] && ws[2*D] != WS_CAS && ws[2*D+1] == WS_CAS ->
       if
       :: rm[1] == wexp[2*D+1] -> applySlot(D, 1, wv1[D]); ws[2*D+1] = WS_DONE;
          printf("MSC: %c slot 1 applied: key %d marker %d\n", 'A'+D, rv[1], rm[1]);
#if MUTANT == 2
          if :: ws[2*D] == WS_READ ->
                if :: q[D] < wpos[D] -> q[D] = wpos[D] :: else fi;
                if :: qs[2*D+1] <= wpos[D] -> qs[2*D+1] = wpos[D] :: else fi
             :: else fi;
#endif
          skip
       :: rm[1] != wexp[2*D+1] -> ws[2*D+1] = WS_READ
       :: rm[1] == wexp[2*D+1] && lost < LOST && !quiet ->
          lost++; applySlot(D, 1, wv1[D]);
          printf("MSC: %c slot 1 applied, reply lost: key %d marker %d\n", 'A'+D, rv[1], rm[1]);
          if
          :: ws[2*D+1] = WS_READ
          :: putBack(D); st[D] = CONNECTING
          fi
       :: lost < LOST && !quiet ->
          lost++;
          if
          :: ws[2*D+1] = WS_READ
          :: putBack(D); st[D] = CONNECTING
          fi
       fi;
       wcas[D] = 0 }

  /* every touched slot resolved: the transport's outcome (RedisClusterSinkTransport.write:95-114), the driver's
     acknowledgement (queued for the checkpoint thread) and the machine (writeSucceeded / writeRefused) */
  :: atomic { st[D] == WRITING && !wcas[D] && ws[2*D] != WS_READ && ws[2*D] != WS_CAS &&
              ws[2*D+1] != WS_READ && ws[2*D+1] != WS_CAS ->
       if
       :: ws[2*D] == WS_WHOLE || ws[2*D+1] == WS_WHOLE ->
          printf("MSC: %c write at pos %d: a slot lost data -> whole view\n", 'A'+D, wpos[D]);
          putBack(D); needfull[D] = 1; st[D] = IDLE; nextWrite(D)
       :: ws[2*D] != WS_WHOLE && ws[2*D+1] != WS_WHOLE && (ws[2*D] == WS_AHEAD || ws[2*D+1] == WS_AHEAD) ->
          printf("MSC: %c write at pos %d: marker ahead (%d): waits\n", 'A'+D, wpos[D], wahead[D]);
          reach(4); waitp[D] = wahead[D]; putBack(D); st[D] = IDLE; nextWrite(D)
       :: else ->
          if
          :: FULLCHECK && (FV(D, 0) == 1 || FV(D, 1) == 1) ->      /* the full check after the write found a lost slot */
             reach(3);
             if :: FV(D, 0) == 1 -> p5(0) :: else fi;
             if :: FV(D, 1) == 1 -> p5(1) :: else fi;
             printf("MSC: %c write at pos %d: full check finds a lost slot -> whole view\n", 'A'+D, wpos[D]);
             putBack(D); needfull[D] = 1; st[D] = IDLE; nextWrite(D)
          :: true ->                                               /* the check not due (or finding nothing) */
             if :: !wfull[D] && ws[2*D] != WS_NONE && ws[2*D+1] == WS_NONE && mrec[2*D+1] > 0 && mrec[2*D+1] < wpos[D] -> reach(2) :: else fi;
             if :: ws[2*D] != WS_NONE -> mrec[2*D] = wpos[D] :: else fi;
             if :: ws[2*D+1] != WS_NONE -> mrec[2*D+1] = wpos[D] :: else fi;
             if :: wfull[D] -> recmiss[D] = 0 :: else fi;
             /* SinkDriver.acknowledge -> CheckpointThread.acknowledge (merge: newest; per slot newest) */
             if :: q[D] < wpos[D] -> q[D] = wpos[D] :: else fi;
             if :: ws[2*D] != WS_NONE && qs[2*D] <= wpos[D] -> qs[2*D] = wpos[D] :: else fi;
             if :: ws[2*D+1] != WS_NONE && qs[2*D+1] <= wpos[D] -> qs[2*D+1] = wpos[D] :: else fi;
             printf("MSC: %c write at pos %d acknowledged (slots %d %d), queued for LMDB\n", 'A'+D, wpos[D], ws[2*D], ws[2*D+1]);
             if :: wpos[D] > ack[D] -> ack[D] = wpos[D] :: else fi;
             wv0[D] = 0; wv1[D] = 0; ws[2*D] = 0; ws[2*D+1] = 0; wexp[2*D] = 0; wexp[2*D+1] = 0; wahead[D] = 0;
             st[D] = IDLE; nextWrite(D)
          fi
       fi }

  /* checkpoint thread: record the queued acknowledgement (CheckpointStore.recordAcknowledged, never backwards) */
  :: atomic { running(D) && q[D] > 0 ->
       if :: qs[2*D] > Lrec[2*D] -> Lrec[2*D] = qs[2*D] :: else fi;
       if :: qs[2*D+1] > Lrec[2*D+1] -> Lrec[2*D+1] = qs[2*D+1] :: else fi;
       if :: q[D] > Lack[D] -> Lack[D] = q[D] :: else fi;
       printf("MSC: %c records ack %d in LMDB (slot records %d %d)\n", 'A'+D, Lack[D], Lrec[2*D], Lrec[2*D+1]);
       q[D] = 0; qs[2*D] = 0; qs[2*D+1] = 0 }

  /* crash (kill -9) and restart: memory lost, LMDB kept */
  :: atomic { !quiet && crashes < CRASHES && running(D) ->
       if :: st[D] == WRITING && ws[2*D] == WS_DONE && (ws[2*D+1] == WS_READ || ws[2*D+1] == WS_CAS) -> reach(5) :: else fi;
       crashes++; start(D);
       printf("MSC: %c crashes and restarts from LMDB pos %d (acked %d, slot records %d %d)\n", 'A'+D, Lpos[D], Lack[D], Lrec[2*D], Lrec[2*D+1]) }
