// Follows one session's live status with the npm `eventsource` package, as a Node
// program would: `new EventSource(url)` on a URL carrying a stream ticket, no header.
// Prints, as JSON, every session event's status, the status of every request the
// client made (reconnects included), and how it ended. Argument: {"url", "withinMs"}.
import { EventSource } from "eventsource";

const { url, withinMs } = JSON.parse(process.argv[2]);
const statuses = [];
const requests = [];
let errors = 0;

const source = new EventSource(url, {
  fetch: async (input, init) => {
    const response = await fetch(input, init);
    requests.push(response.status);
    return response;
  },
});
const finish = (how) => {
  source.close();
  console.log(JSON.stringify({ statuses, requests, errors, how }));
  process.exit(0);
};
const deadline = setTimeout(() => finish("deadline"), withinMs);
source.addEventListener("open", () => console.error("open"));
source.addEventListener("session", (event) => {
  statuses.push(JSON.parse(event.data).status);
  console.error(`session ${statuses.at(-1)}`);
});
source.addEventListener("error", () => {
  errors += 1;
  // CLOSED: the client gave up for good (a 204 or a refusal), not a reconnect.
  if (source.readyState === EventSource.CLOSED) {
    clearTimeout(deadline);
    // Anything more the client would do (another request) shows in `requests`.
    setTimeout(() => finish("closed"), 500);
  }
});
