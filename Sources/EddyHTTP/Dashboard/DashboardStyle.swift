extension DashboardPage {
    /// The page's stylesheet (dark theme; one breakpoint for narrow screens).
    static let style = ##"""
:root {
  --bg: #0a1020; --panel: #101a2f; --panel-2: #0d1628; --line: #1d2944; --line-2: #283755;
  --text: #e6edf7; --muted: #8b9bb8; --faint: #5b6b89; --accent: #38bdf8;
  --ok: #22c55e; --warn: #f59e0b; --bad: #ef4444;
}
* { box-sizing: border-box; }
html, body { margin: 0; }
body {
  background: radial-gradient(1100px 520px at 8% -12%, rgba(56, 189, 248, 0.13), transparent 70%),
              radial-gradient(900px 480px at 100% 0%, rgba(167, 139, 250, 0.08), transparent 70%), var(--bg);
  color: var(--text); min-height: 100vh;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif;
  font-variant-numeric: tabular-nums;
}
header {
  display: flex; align-items: center; flex-wrap: wrap; gap: 10px 14px; padding: 16px 28px;
  border-bottom: 1px solid var(--line); background: rgba(10, 16, 32, 0.7);
}
header .brand { display: flex; align-items: center; gap: 10px; font-weight: 700; font-size: 18px; letter-spacing: 0.02em; }
header .pipeline { font-size: 18px; color: var(--muted); font-weight: 500; }
header .pipeline b { color: var(--text); font-weight: 600; }
header .spacer { flex: 1; }
header .meta { color: var(--muted); font-size: 13px; display: flex; gap: 18px; align-items: center; }
.pill {
  display: inline-flex; align-items: center; gap: 6px; padding: 3px 11px; border-radius: 999px;
  font-size: 12px; font-weight: 650; letter-spacing: 0.05em; text-transform: uppercase; border: 1px solid transparent;
  white-space: nowrap;
}
.pill::before { content: ""; width: 7px; height: 7px; border-radius: 50%; background: currentColor; }
.pill.ok { color: #4ade80; background: rgba(34, 197, 94, 0.12); border-color: rgba(34, 197, 94, 0.35); }
.pill.warn { color: #fbbf24; background: rgba(245, 158, 11, 0.12); border-color: rgba(245, 158, 11, 0.35); }
.pill.bad { color: #f87171; background: rgba(239, 68, 68, 0.12); border-color: rgba(239, 68, 68, 0.35); }
.pill.info { color: #7dd3fc; background: rgba(56, 189, 248, 0.12); border-color: rgba(56, 189, 248, 0.35); }
main { padding: 20px 28px 36px; max-width: 1560px; margin: 0 auto; }
.banner {
  border-radius: 10px; padding: 10px 14px; margin-bottom: 16px; font-size: 13px;
  border: 1px solid rgba(245, 158, 11, 0.4); background: rgba(245, 158, 11, 0.08); color: #fcd34d;
}
.banner.bad { border-color: rgba(239, 68, 68, 0.45); background: rgba(239, 68, 68, 0.09); color: #fca5a5; }
.banner ul { margin: 4px 0 0; padding-left: 18px; }
.banner[hidden] { display: none; }
.kpis { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 12px; margin-bottom: 20px; }
.kpi, .panel, .node {
  background: linear-gradient(180deg, rgba(255, 255, 255, 0.025), transparent 60%), var(--panel);
  border: 1px solid var(--line); border-radius: 12px;
}
.kpi { padding: 12px 16px; }
.label { color: var(--muted); font-size: 11.5px; text-transform: uppercase; letter-spacing: 0.08em; font-weight: 600; }
.kpi .value { font-size: 26px; font-weight: 680; margin-top: 2px; white-space: nowrap; }
.kpi .value small { font-size: 13px; color: var(--muted); font-weight: 500; margin-left: 4px; }
.kpi .sub { color: var(--faint); font-size: 12px; margin-top: 1px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: 0.1em; color: var(--muted); margin: 0 0 10px; font-weight: 650; }
section { margin-bottom: 22px; }
.flow {
  display: grid; grid-template-columns: minmax(0, 1.25fr) 84px minmax(0, 1fr) 84px minmax(0, 1fr) 84px minmax(0, 1fr);
  align-items: stretch; margin-bottom: 12px;
}
.node { padding: 14px 16px; min-width: 0; position: relative; }
.node .kind { display: flex; align-items: center; gap: 8px; }
.node .kind .tag {
  font-size: 10.5px; font-weight: 700; letter-spacing: 0.1em; text-transform: uppercase; padding: 2px 7px; border-radius: 5px;
}
.node.source .tag { color: #7dd3fc; background: rgba(56, 189, 248, 0.14); }
.node.view .tag { color: #c4b5fd; background: rgba(167, 139, 250, 0.16); }
.node.checkpoint .tag { color: #fcd34d; background: rgba(250, 204, 21, 0.13); }
.node.sink .tag { color: #6ee7b7; background: rgba(52, 211, 153, 0.14); }
.node .tech { color: var(--faint); font-size: 12px; margin-left: auto; }
.node .name { font-size: 16px; font-weight: 650; margin: 8px 0 2px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.node .detail { color: var(--muted); font-size: 12.5px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.node .big { font-size: 24px; font-weight: 680; margin-top: 8px; }
.node .big small { font-size: 12.5px; color: var(--muted); font-weight: 500; margin-left: 3px; }
.stats { display: grid; grid-template-columns: 1fr 1fr; gap: 6px 14px; margin-top: 10px; }
.stats div { display: flex; justify-content: space-between; gap: 8px; font-size: 12.5px; border-top: 1px solid var(--line); padding-top: 5px; }
.stats.one { grid-template-columns: 1fr; }
.stats span { color: var(--muted); white-space: nowrap; }
.stats b { font-weight: 600; white-space: nowrap; }
.sinks { display: flex; flex-direction: column; gap: 10px; min-width: 0; }
.sinks .node { flex: 1; }
.node.failing { border-color: rgba(239, 68, 68, 0.55); box-shadow: 0 0 0 1px rgba(239, 68, 68, 0.2) inset; }
.node .error { color: #fca5a5; font-size: 12px; margin-top: 8px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.arrow { position: relative; display: flex; align-items: center; justify-content: center; }
.arrow::before {
  content: ""; position: absolute; left: 6px; right: 10px; top: 50%; height: 2px; margin-top: -1px;
  background: linear-gradient(90deg, rgba(56, 189, 248, 0.2), rgba(56, 189, 248, 0.75));
}
.arrow::after {
  content: ""; position: absolute; right: 4px; top: 50%; margin-top: -6px;
  border: 6px solid transparent; border-left: 9px solid rgba(56, 189, 248, 0.85); border-right: 0;
}
.arrow span {
  position: relative; top: -15px; font-size: 11px; color: var(--muted); white-space: nowrap;
}
.spark { display: block; width: 100%; height: 34px; margin-top: 6px; }
.caption { color: var(--faint); font-size: 11px; margin-top: 2px; }
.note { color: var(--muted); font-size: 12px; margin-top: 8px; }
.toplist { margin-top: 10px; display: flex; flex-direction: column; gap: 5px; }
.toplist div { display: flex; justify-content: space-between; font-size: 12.5px; border-top: 1px solid var(--line); padding-top: 5px; }
.toplist span { color: var(--muted); }
.toplist i { display: inline-block; width: 8px; height: 8px; border-radius: 2px; margin-right: 7px; }
.partitions { width: 100%; border-collapse: collapse; margin-top: 10px; font-size: 12px; }
.partitions th { color: var(--faint); font-weight: 600; text-align: right; padding: 2px 4px; }
.partitions td { text-align: right; padding: 2px 4px; border-top: 1px solid var(--line); }
.partitions th:first-child, .partitions td:first-child { text-align: left; }
.views { display: grid; grid-template-columns: 1fr; gap: 16px; }
.panel { padding: 16px 18px; }
.panel header {
  all: unset; display: flex; align-items: baseline; gap: 12px; margin-bottom: 12px; flex-wrap: wrap;
}
.panel header .title { font-size: 16px; font-weight: 650; }
.panel header .subtitle { color: var(--muted); font-size: 12.5px; }
.panel header .spacer { flex: 1; }
.charts { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1.35fr); gap: 22px; }
.chart-title { display: flex; align-items: center; gap: 10px; margin-bottom: 6px; }
.chart-title .label { flex: 1; }
.toggle { display: inline-flex; border: 1px solid var(--line-2); border-radius: 7px; overflow: hidden; }
.toggle button {
  all: unset; cursor: pointer; font-size: 11.5px; padding: 3px 9px; color: var(--muted);
}
.toggle button.on { background: rgba(56, 189, 248, 0.16); color: #bae6fd; }
svg text { font-family: inherit; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 2px 0 6px; font-size: 12px; color: var(--muted); }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 3px; margin-right: 6px; vertical-align: -1px; }
.empty { color: var(--faint); padding: 30px 0; text-align: center; }
.empty a { color: var(--muted); }
footer { color: var(--faint); font-size: 12px; text-align: center; padding: 0 0 24px; }
footer a { color: var(--muted); }
@media (max-width: 1100px) {
  .kpis { grid-template-columns: repeat(3, minmax(0, 1fr)); }
  .flow { grid-template-columns: 1fr; gap: 0; }
  .arrow { height: 34px; }
  .arrow::before { left: 50%; right: auto; top: 4px; bottom: 10px; width: 2px; height: auto; margin: 0 0 0 -1px; }
  .arrow::after { right: auto; left: 50%; top: auto; bottom: 2px; margin: 0 0 0 -6px; border: 6px solid transparent; border-top: 9px solid rgba(56, 189, 248, 0.85); border-bottom: 0; }
  .arrow span { top: 0; left: 48px; }
  .charts { grid-template-columns: 1fr; }
}
"""##
}
