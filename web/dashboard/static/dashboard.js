// The dashboard's only script: the retrain progress bar and the rating form, the two things
// that need the API token in a request header. Every page reads fine without it.
"use strict";

const TOKEN_KEY = "movierec.token"; // kept for this browser tab's session only
const FINAL_STATES = new Set(["SUCCESS", "FAILURE"]);
const POLL_MS = 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A JSON request to the API: resolves to {status, body}; the token goes as a bearer header. */
async function api(method, url, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

/** Polls a job (GET /jobs/<id>) until it ends, telling `report` each state; its last state. */
async function follow(url, report) {
  for (;;) {
    const { status, body } = await api("GET", url);
    if (status !== 200) throw new Error(body?.error ?? `the job answered ${status}`);
    report(body);
    if (FINAL_STATES.has(body.state)) return body;
    await sleep(POLL_MS);
  }
}

/** The form's token, remembered for the session so the other forms have it too. */
function token(form) {
  const value = form.querySelector("[data-token]").value;
  sessionStorage.setItem(TOKEN_KEY, value);
  return value;
}

function progressText(job) {
  const { stage, percent } = job.progress ?? { stage: job.state.toLowerCase(), percent: 0 };
  return `${job.state} · ${stage} · ${Math.round(percent)}%`;
}

function setUpRetrain(form) {
  const bar = form.querySelector("progress");
  const status = form.querySelector("output");
  const button = form.querySelector("button");

  async function watch(url) {
    button.disabled = true;
    bar.hidden = false;
    try {
      const job = await follow(url, (state) => {
        bar.value = state.progress?.percent ?? 0;
        status.textContent = progressText(state);
      });
      if (job.state === "SUCCESS") {
        const { body } = await api("GET", form.dataset.index);
        for (const place of document.querySelectorAll("[data-version]")) {
          place.textContent = body.model_version;
        }
        status.textContent = `Done: now serving ${body.model_version}. Reload for its figures.`;
      } else {
        status.textContent = `Failed: ${job.error}`;
      }
    } catch (error) {
      status.textContent = `Lost track of the job: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "Starting…";
    const { status: code, body } = await api("POST", form.dataset.start, { token: token(form) });
    if (code === 202 || code === 409) {
      await watch(body.status_url); // 409: one is running already; follow that one
    } else {
      status.textContent = body?.error ?? `The server answered ${code}.`;
    }
  });
  if (form.dataset.follow) watch(form.dataset.follow);
}

/** Re-renders the page's sections with these ids from a fresh copy of the page. */
async function reload(ids) {
  const response = await fetch(location.pathname, { headers: { Accept: "text/html" } });
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ids) document.getElementById(id).replaceWith(fresh.getElementById(id));
}

const listed = () =>
  [...document.querySelectorAll("#recommendations tr[data-movie]")].map((row) => row.dataset.movie);

function setUpRating(form) {
  const status = form.querySelector("output");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const rating = { movieId: Number(form.elements.movieId.value), rating: Number(form.elements.rating.value) };
    status.textContent = "Saving…";
    const { status: code, body } = await api("POST", form.dataset.ratings, {
      token: token(form),
      body: [rating],
    });
    if (code !== 201) {
      status.textContent = body?.error ?? `The server answered ${code}.`;
      return;
    }
    if (body.refresh.state === "queued") {
      status.textContent = "Saved; recomputing the list…";
      await follow(body.refresh.status_url, () => {});
    }
    const before = new Set(listed());
    await reload(["profile", "liking", "recommendations", "history"]);
    const arrived = listed().filter((id) => !before.has(id));
    for (const id of arrived) {
      document.querySelector(`#recommendations tr[data-movie="${id}"]`).classList.add("new");
    }
    status.textContent = body.refresh.reason
      ?? `Saved. ${arrived.length ? `${arrived.length} new on the list (highlighted).` : "The list is unchanged."}`;
  });
}

for (const input of document.querySelectorAll("[data-token]")) {
  input.value = sessionStorage.getItem(TOKEN_KEY) ?? "";
}
for (const form of document.querySelectorAll("form[hidden]")) form.hidden = false;
const retrain = document.getElementById("retrain");
if (retrain) setUpRetrain(retrain);
const rate = document.getElementById("rate-form");
if (rate) setUpRating(rate);
