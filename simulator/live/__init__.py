"""A real phone in the loop: Sensor Logger's live HTTP Push received (`receiver`), served
until it ends by itself (`server`) and shown as it happens (`view`). The stream's meaning
(ordering, files, batches) is `simulator.sensors.live_session`'s, which has no I/O."""
