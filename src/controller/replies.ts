// How the controller's hub tells zeek-client's requests and their answers apart (see
// ReplyRouting): every Management::Controller::API request ends in `_request` and every
// answer in `_response`, each with the request id as its first argument.

import { B } from "../broker/data.js";
import type { ReplyRouting } from "../broker/hub.js";
import type { ZeekEvent } from "../broker/messages.js";
import { ResultCodec, ResultVecCodec, makeResult } from "../management/records.js";
import { CONTROLLER_TOPIC, ControllerApi, ZMgmtControllerApi } from "./api.js";

const REQUEST = "_request";
const RESPONSE = "_response";

const responses = new Map(
  [...Object.values(ControllerApi), ...Object.values(ZMgmtControllerApi)]
    .filter((spec) => spec.name.endsWith(RESPONSE))
    .map((spec) => [spec.name, spec] as const),
);

function firstStringArg(event: ZeekEvent): string | undefined {
  const first = event.args[0];
  return first?.type === "string" ? first.value : undefined;
}

export function controllerReplyRouting(): ReplyRouting {
  return {
    topics: [CONTROLLER_TOPIC],
    requestId: (event) => (event.name.endsWith(REQUEST) ? firstStringArg(event) : undefined),
    responseId: (event) => (event.name.endsWith(RESPONSE) ? firstStringArg(event) : undefined),
    // zeek-client skips Broker error messages and would wait for its timeout; a failed
    // Result in the response it expects is what it shows.
    refusal: ({ name, reqid }, error) => {
      if (!name.endsWith(REQUEST)) return undefined;
      const spec = responses.get(name.slice(0, -REQUEST.length) + RESPONSE);
      if (!spec) return undefined;
      const result = makeResult(reqid, { success: false, error: `request refused: ${error}` });
      const payload = spec.argCodecs[1] === ResultVecCodec ? ResultVecCodec.encode([result]) : ResultCodec.encode(result);
      return { name: spec.name, args: [B.str(reqid), payload] };
    },
  };
}
