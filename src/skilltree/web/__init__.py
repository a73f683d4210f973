"""The learner's web app: server-rendered pages over the same services as the API.

Routers here parse forms and render templates; every rule lives in the domain services they
call. Pages work without JavaScript (plain links and form posts); `static/app.js` makes status
changes, undo and note previews instant. See docs/web.md.
"""
