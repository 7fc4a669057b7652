"""The whole flow on one machine: `onramp demo`, and the local parts it runs on."""
