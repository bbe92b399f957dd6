// The supervisor: parent of the agent, of a co-located controller and of every cluster node
// on its host, like Zeek's stem process. It serves the control API to its own agent only
// (a shared secret on a loopback socket) and reports spawns, crashes and give-ups, so a
// crashing agent never takes nodes down and a restarted agent can re-learn them.

import { errorMessage } from "../broker/errors.js";
import { deliveryEvent, type Delivery, type Hub, type LocalEndpoint } from "../broker/hub.js";
import type { ZeekEvent } from "../broker/messages.js";
import type { Logger } from "../management/log.js";
import {
  SUPERVISOR_NOTIFY_TOPIC,
  SUPERVISOR_RESPONSE_TOPIC,
  SUPERVISOR_TOPIC,
  SupervisorApi,
  type SupervisedNodeConfig,
  type SupervisedNodeStatus,
} from "./api.js";
import type { NodeSpec, ProcessManager, StoppedEvent } from "./process-manager.js";
import { UsageSampler } from "./proc-usage.js";

/** The principal name the hub assigns to the connection that presented the agent token. */
export const AGENT_PRINCIPAL = "agent";

interface SpecMeta {
  managementRole: string;
  meta: string;
}

export class Supervisor {
  private readonly endpoint: LocalEndpoint;
  private readonly usage = new UsageSampler();

  constructor(
    hub: Hub,
    private readonly processes: ProcessManager,
    private readonly log: Logger,
  ) {
    this.endpoint = hub.local([SUPERVISOR_TOPIC], (d) => this.onDelivery(d));
    processes.on("spawn", (ev) => {
      if (ev.message) this.log.info(ev.message);
      if (ev.pid > 0) this.publish(`${SUPERVISOR_TOPIC}/node_status`, SupervisorApi.node_status.make(ev.name, ev.pid));
    });
    processes.on("exit", (ev) => {
      this.log.warning(ev.message);
      this.publish(
        SUPERVISOR_NOTIFY_TOPIC,
        SupervisorApi.notify_node_exit.make({
          name: ev.name,
          pid: ev.pid,
          ...(ev.code !== null ? { exitCode: ev.code } : {}),
          ...(ev.signal !== null ? { signal: ev.signal } : {}),
          outputs: ev.outputs,
          ...(ev.willRevive && ev.delayMs !== undefined ? { restartInMs: Math.round(ev.delayMs) } : {}),
        }),
      );
    });
    processes.on("failed", (ev) => {
      this.log.error(`giving up on node '${ev.name}' after ${ev.attempts} revival attempts`);
      this.publish(SUPERVISOR_NOTIFY_TOPIC, SupervisorApi.notify_node_gave_up.make(ev.name, ev.attempts));
    });
    processes.on("warning", (ev) => this.log.warning(ev.message));
  }

  /** Starts a process directly (used for the agent and a co-located controller). */
  create(config: SupervisedNodeConfig): string {
    return this.processes.create(toSpec(config));
  }

  status(name = ""): SupervisedNodeStatus[] {
    return this.processes.status(name).map((s) => {
      const meta = (s.meta ?? { managementRole: "", meta: "" }) as SpecMeta;
      const config: SupervisedNodeConfig = {
        name: s.name,
        command: s.spec.command,
        directory: s.spec.directory,
        env: s.spec.env ?? {},
        ...(s.spec.cpuAffinity !== undefined ? { cpuAffinity: s.spec.cpuAffinity } : {}),
        managementRole: meta.managementRole,
        meta: meta.meta,
      };
      return {
        config,
        state: s.state,
        restarts: s.restarts,
        ...(s.pid !== undefined ? { pid: s.pid } : {}),
        ...(s.startedAt !== undefined ? { startedAt: s.startedAt } : {}),
        ...(s.lastExit?.code !== undefined && s.lastExit.code !== null ? { lastExitCode: s.lastExit.code } : {}),
        ...(s.lastExit?.signal ? { lastExitSignal: s.lastExit.signal } : {}),
        ...(s.lastExit ? { lastExitAt: s.lastExit.at } : {}),
      };
    });
  }

  close(): void {
    this.endpoint.close();
  }

  private publish(topic: string, event: ZeekEvent): void {
    this.endpoint.publishEvent(topic, event);
  }

  private onDelivery(d: Delivery): void {
    // Only the agent this supervisor started may steer it.
    if (d.origin.principal !== AGENT_PRINCIPAL) return;
    const event = deliveryEvent(d);
    if (!event) return;
    try {
      this.handle(event);
    } catch (err) {
      this.log.error(`cannot handle ${event.name}: ${errorMessage(err)}`);
    }
  }

  private respond(event: ZeekEvent): void {
    this.publish(SUPERVISOR_RESPONSE_TOPIC, event);
  }

  private handle(event: ZeekEvent): void {
    switch (event.name) {
      case SupervisorApi.create_request.name: {
        const [reqid, config] = SupervisorApi.create_request.parse(event);
        const error = this.create(config);
        this.log.info(`rx ${event.name} ${reqid} ${config.name}${error ? `: ${error.trim()}` : ""}`);
        this.respond(SupervisorApi.create_response.make(reqid, error));
        return;
      }
      case SupervisorApi.destroy_request.name: {
        const [reqid, name] = SupervisorApi.destroy_request.parse(event);
        this.log.info(`rx ${event.name} ${reqid} ${name || "<all>"}`);
        void this.destroy(name).then((ok) => this.respond(SupervisorApi.destroy_response.make(reqid, ok)));
        return;
      }
      case SupervisorApi.restart_request.name: {
        const [reqid, name] = SupervisorApi.restart_request.parse(event);
        this.log.info(`rx ${event.name} ${reqid} ${name || "<all>"}`);
        // "" would also restart the agent and the controller; only named nodes are allowed.
        const ok = name !== "" && this.processes.restart(name);
        this.respond(SupervisorApi.restart_response.make(reqid, ok));
        return;
      }
      case SupervisorApi.status_request.name: {
        const [reqid, name] = SupervisorApi.status_request.parse(event);
        this.respond(SupervisorApi.status_response.make(reqid, this.status(name)));
        return;
      }
      case SupervisorApi.stop_request.name: {
        const [reqid, name] = SupervisorApi.stop_request.parse(event);
        this.log.info(`rx ${event.name} ${reqid} ${name}`);
        // Management processes are the agent's lifeline; only cluster nodes may be stopped.
        const target = name === "" ? undefined : this.status(name)[0];
        if (!target || target.config.managementRole !== "") {
          this.respond(SupervisorApi.stop_response.make(reqid, false));
          return;
        }
        void this.processes.stop(name).then((ok) => this.respond(SupervisorApi.stop_response.make(reqid, ok)));
        return;
      }
      case SupervisorApi.start_request.name: {
        const [reqid, name] = SupervisorApi.start_request.parse(event);
        this.log.info(`rx ${event.name} ${reqid} ${name}`);
        this.respond(SupervisorApi.start_response.make(reqid, name !== "" && this.processes.start(name)));
        return;
      }
      case SupervisorApi.usage_request.name: {
        const [reqid, name] = SupervisorApi.usage_request.parse(event);
        const targets = this.status(name).flatMap((s) => (s.pid !== undefined ? [{ name: s.config.name, pid: s.pid }] : []));
        void this.usage.sample(targets).then((usage) => this.respond(SupervisorApi.usage_response.make(reqid, usage)));
        return;
      }
    }
  }

  /** Resolves once the named processes are gone. "" destroys cluster nodes only. */
  private async destroy(name: string): Promise<boolean> {
    const targets = name === "" ? this.status().filter((s) => s.config.managementRole === "") : this.status(name);
    if (targets.length === 0) return name === "";
    await Promise.all(targets.map((t) => this.destroyOne(t)));
    return true;
  }

  private destroyOne(target: SupervisedNodeStatus): Promise<void> {
    const name = target.config.name;
    if (target.pid === undefined) {
      this.processes.destroy(name);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const onStopped = (ev: StoppedEvent): void => {
        if (ev.name !== name || ev.reason !== "destroy") return;
        this.processes.off("stopped", onStopped);
        resolve();
      };
      this.processes.on("stopped", onStopped);
      if (!this.processes.destroy(name)) {
        this.processes.off("stopped", onStopped);
        resolve();
      }
    });
  }
}

function toSpec(config: SupervisedNodeConfig): NodeSpec {
  return {
    name: config.name,
    command: config.command,
    directory: config.directory,
    env: config.env,
    ...(config.cpuAffinity !== undefined ? { cpuAffinity: config.cpuAffinity } : {}),
    meta: { managementRole: config.managementRole, meta: config.meta } satisfies SpecMeta,
  };
}
