// The dashboard's views (Preact components written with htm's tagged templates, so the
// page needs no build step). Data and actions live in model.js.

import { h, render } from "./vendor/preact.mjs";
import { useEffect, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";
import { Model } from "./model.js";
import * as R from "./records.js";

const html = htm.bind(h);

function useModel(model) {
  const [state, setState] = useState(model.state);
  useEffect(() => model.subscribe(setState), [model]);
  return state;
}

function Header({ model, state }) {
  const canAct = state.access === "read-write";
  const live = state.connection === "open";
  return html`<header>
    <h1>zmgmt</h1>
    <span class=${`conn ${live ? "live" : "down"}`} data-testid="connection">${live ? "live" : state.connection}</span>
    <span class="access" data-testid="access">${state.access}</span>
    <span class="spacer"></span>
    <button
      data-testid="deploy"
      disabled=${!canAct || state.busy.has("deploy") || !state.staged}
      title=${canAct ? "deploy the staged configuration" : "read-only access"}
      onClick=${() => void model.deploy()}
    >
      ${state.busy.has("deploy") ? "Deploying…" : "Deploy staged configuration"}
    </button>
  </header>`;
}

function Notice({ model, state }) {
  if (!state.notice) return null;
  return html`<div class="notice" data-testid="notice">
    ${state.notice} <button class="link" onClick=${() => model.set({ notice: undefined })}>dismiss</button>
  </div>`;
}

function Instances({ state }) {
  return html`<section>
    <h2>Instances</h2>
    ${
      state.instances.length === 0
        ? html`<p class="muted">No agent has checked in.</p>`
        : html`<table data-testid="instances">
            <thead>
              <tr>
                <th>instance</th>
                <th>host</th>
                <th>listen port</th>
              </tr>
            </thead>
            <tbody>
              ${state.instances.map(
                (i) =>
                  html`<tr key=${i.name}>
                    <td>${i.name}</td>
                    <td>${i.host}</td>
                    <td>${i.listenPort ?? ""}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
  </section>`;
}

function NodeRow({ model, state, node }) {
  const canAct = state.access === "read-write";
  const busy = state.busy.has(`restart:${node.name}`);
  return html`<tr data-node=${node.name}>
    <td class="name">${node.name}</td>
    <td><span class=${`state s-${String(node.state).toLowerCase()}`} data-field="state">${node.state}</span></td>
    <td data-field="pid">${node.pid ?? ""}</td>
    <td data-field="uptime">${node.state === "RUNNING" ? R.formatDuration(node.uptimeMs) : ""}</td>
    <td data-field="restarts">${node.restarts ?? ""}</td>
    <td data-field="last-exit">${R.lastExit(node)}</td>
    <td data-field="cpu">${node.cpuPercent !== undefined ? `${node.cpuPercent.toFixed(1)} %` : ""}</td>
    <td data-field="memory">${R.formatBytes(node.rssBytes)}</td>
    <${CaptureCell} capture=${state.capture.get(node.name)} />
    <td class="actions">
      <button data-action="logs" onClick=${() => void model.showLogs(node.name)}>Logs</button>
      <button
        data-action="restart"
        disabled=${!canAct || busy}
        title=${canAct ? `restart ${node.name}` : "read-only access"}
        onClick=${() => void model.restart(node.name)}
      >
        ${busy ? "Restarting…" : "Restart"}
      </button>
    </td>
  </tr>`;
}

function CaptureCell({ capture }) {
  const c = R.captureSummary(capture);
  return html`<td data-field="capture" class=${c.drops ? "drops" : ""} title=${c.title ?? ""}>${c.text}</td>`;
}

function Nodes({ model, state }) {
  const groups = R.groupNodes([...state.nodes.values()].map((n) => R.withProcess(n, state.processes.get(n.name))));
  return html`<section>
    <h2>Nodes <span class="muted small">${state.updatedAt ? `updated ${new Date(state.updatedAt).toLocaleTimeString()}` : ""}</span></h2>
    ${groups.length === 0 ? html`<p class="muted">No nodes deployed.</p>` : null}
    ${groups.map(
      ([inst, roles]) =>
        html`<div class="instance" key=${inst} data-instance=${inst}>
          <h3>${inst}</h3>
          <table class="nodes">
            <thead>
              <tr>
                <th>node</th>
                <th>state</th>
                <th>pid</th>
                <th>uptime</th>
                <th>restarts</th>
                <th>last exit</th>
                <th>CPU</th>
                <th>memory</th>
                <th>capture</th>
                <th></th>
              </tr>
            </thead>
            ${roles.map(
              ([role, nodes]) =>
                html`<tbody key=${role} data-role=${role}>
                  <tr class="role">
                    <td colspan="10">${role.toLowerCase()}</td>
                  </tr>
                  ${nodes.map((n) => html`<${NodeRow} key=${n.name} model=${model} state=${state} node=${n} />`)}
                </tbody>`,
            )}
          </table>
        </div>`,
    )}
  </section>`;
}

function Logs({ model, state }) {
  const logs = state.logs;
  if (!logs) return null;
  return html`<section class="logs" data-testid="logs">
    <h2>
      Output of ${logs.node}
      ${["stdout", "stderr"].map(
        (s) =>
          html`<button key=${s} class=${`tab ${logs.stream === s ? "on" : ""}`} onClick=${() => void model.showLogs(logs.node, s)}>
            ${s}
          </button>`,
      )}
      <button onClick=${() => void model.showLogs(logs.node, logs.stream)}>Refresh</button>
      <button onClick=${() => model.closeLogs()}>Close</button>
    </h2>
    ${logs.error ? html`<p class="error">${logs.error}</p>` : null} ${logs.loading ? html`<p class="muted">Loading…</p>` : null}
    ${logs.truncated ? html`<p class="muted">Older lines left out.</p>` : null}
    <pre data-testid="log-lines">${logs.lines.join("\n")}</pre>
  </section>`;
}

function Configs({ state }) {
  const staged = R.configurationText(state.staged);
  const deployed = R.configurationText(state.deployed);
  // Ports the controller assigned are not a difference the operator made.
  const diff = R.lineDiff(R.configurationText(R.withoutAssignedPorts(state.deployed, state.staged)), staged);
  const changed = diff.some((d) => d.op !== " ");
  const id = (c) => (c ? c.id : c === null ? "none" : "…");
  const verdict =
    state.staged && state.deployed && state.staged.id === state.deployed.id
      ? "the staged configuration is deployed"
      : changed
        ? "the staged configuration differs from the deployed one"
        : "the staged configuration has the deployed one's content";
  return html`<section>
    <h2>Configuration</h2>
    <p>
      Staged <code>${id(state.staged)}</code>, deployed <code>${id(state.deployed)}</code>:${" "}
      <strong data-testid="config-state">${verdict}</strong>
    </p>
    <div class="configs">
      <div>
        <h3>Deployed</h3>
        <pre data-testid="deployed-config">${deployed}</pre>
      </div>
      <div>
        <h3>Staged</h3>
        <pre data-testid="staged-config">${staged}</pre>
      </div>
      <div>
        <h3>Diff (deployed → staged)</h3>
        <pre class="diff" data-testid="config-diff">
${diff.map((d, i) => html`<span key=${i} class=${d.op === "+" ? "add" : d.op === "-" ? "del" : ""}>${`${d.op} ${d.text}\n`}</span>`)}</pre>
      </div>
    </div>
  </section>`;
}

function History({ state }) {
  const h = state.history;
  return html`<section>
    <h2>Deploy history</h2>
    ${h === undefined ? html`<p class="muted">Loading…</p>` : null} ${h && !Array.isArray(h) ? html`<p class="error">${h.error}</p>` : null}
    ${Array.isArray(h) && h.length === 0 ? html`<p class="muted">No deployment since the controller started.</p>` : null}
    ${
      Array.isArray(h) && h.length > 0
        ? html`<table data-testid="history">
            <thead>
              <tr>
                <th>started</th>
                <th>configuration</th>
                <th>outcome</th>
                <th>took</th>
                <th>failed nodes</th>
                <th>by</th>
                <th>error</th>
              </tr>
            </thead>
            <tbody>
              ${h.map(
                (d) =>
                  html`<tr key=${d.reqid}>
                    <td>${R.formatTime(d.startedAt)}</td>
                    <td><code>${d.configId}</code></td>
                    <td><span class=${`outcome o-${d.outcome.toLowerCase()}`}>${d.outcome.toLowerCase().replace("_", " ")}</span></td>
                    <td>${d.finishedAt !== undefined ? `${((d.finishedAt - d.startedAt) / 1000).toFixed(1)} s` : ""}</td>
                    <td>${d.failedNodes || ""}</td>
                    <td>${d.internal ? "controller" : "client"}</td>
                    <td>${d.error ?? ""}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
        : null
    }
  </section>`;
}

function Events({ state }) {
  return html`<section>
    <h2>Events</h2>
    ${state.events.length === 0 ? html`<p class="muted">Changes, logs and errors that agents report appear here.</p>` : null}
    <ul class="events" data-testid="events">
      ${state.events.map(
        (e, i) => html`<li key=${`${e.at}-${i}`} class=${`e-${e.kind}`}>${new Date(e.at).toLocaleTimeString()} ${e.text}</li>`,
      )}
    </ul>
  </section>`;
}

function App({ model }) {
  const state = useModel(model);
  return html`<${Header} model=${model} state=${state} />
    <main>
      <${Notice} model=${model} state=${state} />
      <${Nodes} model=${model} state=${state} />
      <${Logs} model=${model} state=${state} />
      <${Instances} state=${state} />
      <${Configs} state=${state} />
      <${History} state=${state} />
      <${Events} state=${state} />
    </main>`;
}

const model = new Model(window.location);
render(html`<${App} model=${model} />`, document.getElementById("app"));
void model.start();
