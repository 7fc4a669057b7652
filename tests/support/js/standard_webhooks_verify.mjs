// Verifies deliveries with the npm `standardwebhooks` package, as a merchant's Node
// backend would: prints {"verified": [true|false, ...]} for the secret given.
import { Webhook } from "standardwebhooks";

const { secret, deliveries } = JSON.parse(process.argv[2]);
const wh = new Webhook(secret.replace(/^whsec_/, ""));
const verified = deliveries.map(({ headers, body }) => {
  try {
    wh.verify(body, headers);
    return true;
  } catch {
    return false;
  }
});
console.log(JSON.stringify({ verified }));
