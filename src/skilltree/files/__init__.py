"""Files: attachments on notes, streamed into object storage, downloaded through signed URLs."""
