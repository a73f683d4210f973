"""Study rooms: WebSocket chat with presence, typing, read receipts and exact replay."""
