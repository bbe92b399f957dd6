// One event sent to many peers that differs per peer only in its topic and its first
// argument (a request id): a deployment's deploy_request to every agent carries the same
// configuration. Encoding that configuration once per peer made a deploy to 1,000 agents
// spend most of its time re-encoding identical bytes; a template encodes it once and
// splices topic and id into the text.

import { randomUUID } from "node:crypto";
import { B, type BrokerData } from "./data.js";
import { encodeEventMessage } from "./messages.js";

/** A frame split around its request id: `head` is small, `tail` is the shared bulk. */
export interface SplicedFrame {
  head: string;
  tail: string;
}

export class EventFrameTemplate {
  private readonly beforeTopic: string;
  private readonly beforeId: string;
  /** Everything after the request id: the same bytes for every peer. */
  readonly tail: string;
  private tailBytes: Buffer | undefined;

  /**
   * `args` are the event's arguments after the request id. Throws when the encoding does
   * not have exactly one place for each of topic and id (it always does for well-formed
   * events, because both are plain JSON strings the encoder writes with JSON.stringify).
   */
  constructor(name: string, args: BrokerData[]) {
    // Placeholders no real value contains; found exactly once each, or this throws.
    const topicMark = `\u0000topic-${randomUUID()}`;
    const idMark = `\u0000reqid-${randomUUID()}`;
    const text = encodeEventMessage(topicMark, { name, args: [B.str(idMark), ...args] });
    const [beforeTopic, afterTopic, ...extraT] = text.split(JSON.stringify(topicMark));
    const [beforeId, tail, ...extraI] = (afterTopic ?? "").split(JSON.stringify(idMark));
    if (afterTopic === undefined || tail === undefined || extraT.length > 0 || extraI.length > 0 || beforeId === undefined) {
      throw new Error(`cannot build a frame template for ${name}`);
    }
    this.beforeTopic = beforeTopic!;
    this.beforeId = beforeId;
    this.tail = tail;
  }

  /** The text of `encodeEventMessage(topic, event)` for this event with `reqid`, split for sending. */
  splice(topic: string, reqid: string): SplicedFrame {
    return { head: `${this.beforeTopic}${JSON.stringify(topic)}${this.beforeId}${JSON.stringify(reqid)}`, tail: this.tail };
  }

  /** The whole frame as one string. */
  frame(topic: string, reqid: string): string {
    const { head, tail } = this.splice(topic, reqid);
    return head + tail;
  }

  /** The shared tail as UTF-8, encoded once and written to every peer without copying. */
  tailBuffer(): Buffer {
    return (this.tailBytes ??= Buffer.from(this.tail, "utf8"));
  }
}
