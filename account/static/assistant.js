// The assistant panel: ask without leaving the dashboard. Without script the form posts as usual.
(function () {
  const form = document.getElementById("assistant-form");
  if (!form) return;
  const log = document.getElementById("assistant-log");
  const input = document.getElementById("assistant-question");
  const button = document.getElementById("assistant-ask");

  function bubble(kind, text) {
    const div = document.createElement("div");
    div.className = kind;
    div.textContent = text;  // text, never HTML: answers are not trusted markup
    log.appendChild(div);
    return div;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    const data = new FormData(form);
    bubble("q", question);
    const pending = bubble("a pending", "Thinking…");
    input.value = "";
    button.disabled = true;
    try {
      const response = await fetch(form.action, {method: "POST", body: data, credentials: "same-origin",
                                                 headers: {"Accept": "application/json"}});
      if (response.status === 401 || (response.redirected && new URL(response.url).pathname === "/login")) {
        pending.textContent = "You are signed out. ";
        const link = document.createElement("a");
        link.href = "/login";
        link.textContent = "Sign in again";
        pending.appendChild(link);
        pending.appendChild(document.createTextNode(" to ask the assistant."));
        pending.className = "a error";
        return;
      }
      const reply = await response.json();
      pending.textContent = reply.answer != null ? reply.answer : reply.error;
      pending.className = reply.answer != null ? "a answer" : "a error";
    } catch (err) {
      pending.textContent = "The assistant is not reachable right now. Try again in a minute.";
      pending.className = "a error";
    } finally {
      button.disabled = false;
      input.focus();
    }
  });
})();
