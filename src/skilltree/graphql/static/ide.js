// skilltree: starts GraphiQL on the IDE page. A file rather than an inline script, so the page's
// Content-Security-Policy can forbid inline code. Queries and mutations go to the endpoint named
// by the page, with the browser's session cookie and, when signed in, its CSRF token (a POST
// with a session cookie needs it, as every write to the REST API does).
"use strict";
(function () {
  var root = document.getElementById("graphiql");
  var endpoint = root.getAttribute("data-endpoint");
  var csrf = document.querySelector('meta[name="csrf-token"]');

  function fetcher(params) {
    var headers = { "content-type": "application/json", accept: "application/json" };
    if (csrf) {
      headers["x-csrf-token"] = csrf.getAttribute("content");
    }
    return fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: headers,
      body: JSON.stringify(params),
    }).then(function (response) {
      return response.json();
    });
  }

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: "{\n  roadmaps(limit: 5) {\n    total\n    items { slug title topicCount }\n  }\n}\n",
    })
  );
})();
