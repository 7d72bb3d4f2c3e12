extension DashboardPage {
    /// The page's static markup; the script fills `#kpis`, `#flows` and `#views`.
    static let body = ##"""
<header>
  <div class="brand">
    <svg width="26" height="26" viewBox="0 0 32 32" aria-hidden="true">
      <defs><linearGradient id="eddy-logo" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#38bdf8"/><stop offset="1" stop-color="#a78bfa"/></linearGradient></defs>
      <path d="M16 3a13 13 0 1 0 13 13c0-5.2-4.2-9.4-9.4-9.4-3.9 0-7 3.1-7 7 0 2.8 2.3 5.1 5.1 5.1 2 0 3.6-1.6 3.6-3.6 0-1.4-1.1-2.5-2.5-2.5"
            fill="none" stroke="url(#eddy-logo)" stroke-width="3" stroke-linecap="round"/>
    </svg>
    eddy
  </div>
  <div class="pipeline" id="pipeline">connecting…</div>
  <span class="pill info" id="state">—</span>
  <span class="pill info" id="ready">—</span>
  <div class="spacer"></div>
  <div class="meta"><span id="uptime"></span><span id="updated"></span></div>
</header>
<main>
  <div class="banner bad" id="disconnected" hidden></div>
  <div class="banner" id="reasons" hidden></div>
  <div class="kpis" id="kpis"></div>
  <section>
    <h2>Pipeline</h2>
    <div id="flows"></div>
  </section>
  <section>
    <h2>Views</h2>
    <div class="views" id="views"></div>
  </section>
</main>
<footer>Live from <code>/api/status</code> and <code>/api/views</code>, refreshed every second · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></footer>
"""##
}
