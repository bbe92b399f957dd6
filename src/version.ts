// Reported in WebSocket acks and by --version.
export const VERSION = "0.1.0";
