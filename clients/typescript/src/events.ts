/** A session's live status over Server-Sent Events, read with fetch (EventSource cannot
 * send the Bearer token), reconnecting with Last-Event-ID so no change is missed. */

export interface ServerSentEvent {
  id?: string;
  event?: string;
  data: string;
}

/** Events as the SSE specification parses them; comment lines (heartbeats) are skipped. */
export async function* parseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event: ServerSentEvent = { data: "" };
  let hasData = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        // A "\r" at the end may be half of a "\r\n" split between two reads.
        if (newline === buffer.length - 1 && buffer.endsWith("\r")) break;
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (hasData) yield event;
          event = { data: "" };
          hasData = false;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (name === "data") {
          event.data = hasData ? `${event.data}\n${text}` : text;
          hasData = true;
        } else if (name === "id") event.id = text;
        else if (name === "event") event.event = text;
      }
    }
  } finally {
    // A consumer that stops early closes the connection, and the server's stream with it.
    await reader.cancel().catch(() => undefined);
  }
}
