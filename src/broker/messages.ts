// The frames of Broker's WebSocket JSON API v1: the subscription handshake, the ack,
// data messages (a value flattened into the envelope) and error messages, plus Zeek
// events, which travel as a data message holding `[1, 1, [name, args, metadata?]]`.

import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { B, type BrokerData } from "./data.js";
import { decodeTyped, encodeDataPayload } from "./codec.js";
import { ProtocolError } from "./errors.js";

export const WEBSOCKET_PATH = "/v1/messages/json";
/** Zeek's event message format (`broker::zeek::ProtocolVersion`) and the Event kind. */
export const EVENT_FORMAT_VERSION = 1;
export const EVENT_KIND = 1;

const HandshakeSchema = Type.Array(Type.String());
const AckSchema = Type.Object({ type: Type.Literal("ack"), endpoint: Type.String(), version: Type.Unknown() });
const ErrorSchema = Type.Object({ type: Type.Literal("error"), code: Type.String(), context: Type.String() });
const DataMessageSchema = Type.Object({
  topic: Type.String(),
  "@data-type": Type.String(),
  data: Type.Unknown(),
});

const isHandshake = TypeCompiler.Compile(HandshakeSchema);
const isAck = TypeCompiler.Compile(AckSchema);
const isError = TypeCompiler.Compile(ErrorSchema);
const isDataMessage = TypeCompiler.Compile(DataMessageSchema);

export type Ack = Static<typeof AckSchema>;
export type ErrorMessage = Static<typeof ErrorSchema>;

export interface DataMessage {
  topic: string;
  data: BrokerData;
}

export interface ZeekEvent {
  name: string;
  args: BrokerData[];
  /** `[key, value]` pairs; key 1 is the network timestamp. Absent on most events. */
  metadata?: Array<[number, BrokerData]>;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError("deserialization_failed", "failed to decode JSON object");
  }
}

// ---------------------------------------------------------------------------------------
// Handshake and ack.

export function encodeHandshake(topics: string[]): string {
  return JSON.stringify(topics);
}

export function decodeHandshake(text: string): string[] {
  const json = parseJson(text);
  if (!Array.isArray(json)) throw new ProtocolError("deserialization_failed", "subscriptions not an array");
  if (!isHandshake.Check(json)) {
    throw new ProtocolError("deserialization_failed", "individual subscription not a string");
  }
  return json;
}

export function encodeAck(endpoint: string, version: string): string {
  return JSON.stringify({ type: "ack", endpoint, version });
}

/** Any server frame, as a client sees it. */
export type ServerFrame =
  | { kind: "ack"; endpoint: string; version: string }
  | { kind: "error"; code: string; context: string }
  | { kind: "data"; message: DataMessage };

export function decodeServerFrame(text: string): ServerFrame {
  const json = parseJson(text);
  if (isAck.Check(json)) return { kind: "ack", endpoint: json.endpoint, version: String(json.version) };
  if (isError.Check(json)) return { kind: "error", code: json.code, context: json.context };
  return { kind: "data", message: decodeDataMessageJson(json) };
}

// ---------------------------------------------------------------------------------------
// Data and error messages.

export function encodeDataMessage(topic: string, data: BrokerData): string {
  return `{"type":"data-message","topic":${JSON.stringify(topic)},"@data-type":${JSON.stringify(
    data.type,
  )},"data":${encodeDataPayload(data)}}`;
}

export function decodeDataMessage(text: string): DataMessage {
  return decodeDataMessageJson(parseJson(text));
}

function decodeDataMessageJson(json: unknown): DataMessage {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ProtocolError("deserialization_failed", "failed to decode JSON object");
  }
  if (typeof (json as Record<string, unknown>)["topic"] !== "string") {
    throw new ProtocolError("deserialization_failed", "no topic in top-level JSON object");
  }
  // Nesting is bounded by decodeTyped (MAX_NESTING_DEPTH), the only recursive step; JSON.parse
  // and the envelope check do not recurse into `data`. A separate walk of the whole value
  // before decoding cost a large share of every frame's decoding time.
  if (!isDataMessage.Check(json)) {
    throw new ProtocolError("deserialization_failed", "failed to decode JSON object");
  }
  try {
    return { topic: json.topic, data: decodeTyped(json["@data-type"], json.data) };
  } catch (err) {
    // Broker's server answers every undecodable value with the same context text; the
    // detailed reason is kept in `cause` for our own logs.
    const e = new ProtocolError("deserialization_failed", "failed to decode JSON object");
    (e as Error).cause = err;
    throw e;
  }
}

export function encodeError(code: string, context: string): string {
  return JSON.stringify({ type: "error", code, context });
}

// ---------------------------------------------------------------------------------------
// Zeek events.

export function eventToData(event: ZeekEvent): BrokerData {
  const body: BrokerData[] = [B.str(event.name), B.vec(event.args)];
  if (event.metadata) body.push(B.vec(event.metadata.map(([k, v]) => B.vec([B.count(k), v]))));
  return B.vec([B.count(EVENT_FORMAT_VERSION), B.count(EVENT_KIND), B.vec(body)]);
}

const NOT_AN_EVENT = "failed to create Zeek event";

/** Interprets a data value as a Zeek event; anything else is a ProtocolError. */
export function dataToEvent(data: BrokerData): ZeekEvent {
  const bad = (): never => {
    throw new ProtocolError("invalid_event", NOT_AN_EVENT);
  };
  if (data.type !== "vector" || data.value.length !== 3) return bad();
  const [format, kind, body] = data.value as [BrokerData, BrokerData, BrokerData];
  if (format.type !== "count" || format.value !== EVENT_FORMAT_VERSION) return bad();
  if (kind.type !== "count" || kind.value !== EVENT_KIND) return bad();
  if (body.type !== "vector" || body.value.length < 2 || body.value.length > 3) return bad();
  const [name, args, meta] = body.value as [BrokerData, BrokerData, BrokerData | undefined];
  if (name.type !== "string" || name.value === "" || args.type !== "vector") return bad();
  const event: ZeekEvent = { name: name.value, args: args.value };
  if (meta !== undefined) {
    if (meta.type !== "vector") return bad();
    event.metadata = meta.value.map((entry) => {
      if (entry.type !== "vector" || entry.value.length !== 2 || entry.value[0]!.type !== "count") return bad();
      return [(entry.value[0] as { value: number }).value, entry.value[1]!];
    });
  }
  return event;
}

export function encodeEventMessage(topic: string, event: ZeekEvent): string {
  return encodeDataMessage(topic, eventToData(event));
}

/** What sniffEventFrame could tell about a frame without decoding it. */
export interface EventFrameSniff {
  topic?: string;
  /** The event's name: the first string value in the frame. */
  name?: string;
  /** The second string value: for request events, the request id. */
  firstArg?: string;
}

const SNIFF_HEAD_CHARS = 64 * 1024;
const SNIFF_TAIL_CHARS = 4 * 1024;
const JSON_STRING = String.raw`"((?:[^"\\]|\\.)*)"`;
// Inside JSON strings quotes are escaped, so these only match structural keys. Both key
// orders occur: zeek-client sorts keys ("@data-type" first), our encoder puts "data" last.
const STRING_VALUE_TYPE_FIRST = new RegExp(String.raw`"@data-type"\s*:\s*"string"\s*,\s*"data"\s*:\s*${JSON_STRING}`, "g");
const STRING_VALUE_DATA_FIRST = new RegExp(String.raw`"data"\s*:\s*${JSON_STRING}\s*,\s*"@data-type"\s*:\s*"string"`, "g");
const TOPIC_KEY = new RegExp(String.raw`"topic"\s*:\s*${JSON_STRING}`);

/**
 * Reads the topic, event name and first argument out of a data-message frame too large to
 * decode, from its first and last few kilobytes only, so that a refused request can still
 * be answered in a form its sender understands. Best effort: fields it cannot find are
 * left out, and nothing here is trusted beyond addressing that answer.
 */
export function sniffEventFrame(text: string): EventFrameSniff {
  const head = text.slice(0, SNIFF_HEAD_CHARS);
  const tail = text.length > SNIFF_HEAD_CHARS ? text.slice(-SNIFF_TAIL_CHARS) : "";
  const unescape = (raw: string): string | undefined => {
    try {
      return JSON.parse(`"${raw}"`) as string;
    } catch {
      return undefined;
    }
  };
  const strings: Array<[number, string]> = [];
  for (const re of [STRING_VALUE_TYPE_FIRST, STRING_VALUE_DATA_FIRST]) {
    for (const m of head.matchAll(re)) strings.push([m.index, m[1]!]);
  }
  strings.sort((a, b) => a[0] - b[0]);
  const out: EventFrameSniff = {};
  const topic = TOPIC_KEY.exec(head) ?? TOPIC_KEY.exec(tail);
  const topicText = topic ? unescape(topic[1]!) : undefined;
  if (topicText !== undefined) out.topic = topicText;
  const name = strings[0] ? unescape(strings[0][1]) : undefined;
  if (name !== undefined) out.name = name;
  const firstArg = strings[1] ? unescape(strings[1][1]) : undefined;
  if (firstArg !== undefined) out.firstArg = firstArg;
  return out;
}
