// A caseworker's whole job in the pages, in Debian's Chromium driven by playwright-core: sign in
// through the municipality's identity provider (oidc-provider, tests/js/oidc_provider.mjs), open
// a new case, add the people around the child, record the mother's consent for the school, make
// the plan (seeing its preview first), confirm the first meetings, wait until the invitations are
// sent, revise the plan (its preview says who will be told) and wait until that is sent too.
// Every step's page goes through axe-core and leaves a screenshot in the artifacts folder. It
// asserts nothing: it prints one JSON object of what it saw, and
// tests/web/test_whole_case_browser.py compares it with the mail folder and the API. Usage:
//   node whole_case.mjs '{"base": "...", "issuer": "...", "chromium": "...", "artifacts": "...", "mail": "..."}'
import { createRequire } from "node:module";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "js", "package.json"));
const { chromium } = require("playwright-core");
const AXE = require.resolve("axe-core/axe.min.js");

const args = JSON.parse(process.argv[2]);
const out = { observations: {}, screenshots: [], errors: [], pages: [] };
const obs = out.observations;
mkdirSync(args.artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: args.chromium, timeout: 60000,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
});
// axe is injected as a script, which our CSP (rightly) forbids: this context bypasses it.
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "nb-NO", bypassCSP: true });
context.setDefaultTimeout(15000);
const page = await context.newPage();

// Every top-level address the browser goes to: the sign-in must pass through the provider.
obs.navigations = [];
page.on("request", (request) => {
  if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
    const url = new URL(request.url());
    obs.navigations.push(url.origin + url.pathname);
  }
});

const text = async (locator) => (await locator.innerText()).replace(/\s+/g, " ").trim();
const pathOf = () => new URL(page.url()).pathname;

// Each step's page through axe-core (WCAG 2.1 AA) before its screenshot.
async function shot(file) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
  });
  out.pages.push({ file, url: pathOf(), violations });
  await page.screenshot({ path: path.join(args.artifacts, file), fullPage: true });
  out.screenshots.push(file);
}

// A step that fails stops the walk: each one needs what the one before made.
let stopped = false;
async function step(name, fn) {
  if (stopped) {
    out.errors.push({ step: name, error: "not run: an earlier step failed" });
    return;
  }
  try {
    await fn();
  } catch (error) {
    stopped = true;
    out.errors.push({ step: name, url: page.url(), error: String(error?.message ?? error).slice(0, 1500) });
    try {
      await page.screenshot({ path: path.join(args.artifacts, `fel-${name.replace(/\W+/g, "-")}.png`), fullPage: true });
    } catch {
      // best effort: the screenshot only helps to read the failure
    }
  }
}

async function submit(selector, landing) {
  await Promise.all([page.waitForURL(landing), page.click(selector)]);
}

// The outbox page, reloaded until no message of this kind waits any longer (the dispatcher runs every second).
async function untilSent(caseUrl, kind) {
  const deadline = Date.now() + 30000;
  for (;;) {
    await page.goto(args.base + caseUrl + "/utsendinger?status=venter");
    const waiting = await page.locator("table.outbox tbody tr").filter({ hasText: kind }).count();
    if (waiting === 0) return;
    if (Date.now() > deadline) throw new Error(`${waiting} ${kind} still waiting after 30 s`);
    await page.waitForTimeout(500);
  }
}

const mailFiles = () => (existsSync(args.mail) ? readdirSync(args.mail).filter((f) => f.endsWith(".eml")).sort() : []);

await step("sign in", async () => {
  await page.goto(args.base + "/");
  obs.signInPage = pathOf();
  await shot("40-logg-inn-kommunen.png");
  await submit("a:has-text('Logg inn med kommunens innlogging')", (url) => url.origin === args.base && url.pathname === "/");
  obs.signedInAs = await text(page.locator(".sign-out .who"));
});

let caseUrl = "";
await step("new case", async () => {
  await submit("nav.site-nav a:has-text('Ny sak')", (url) => url.pathname === "/saker/ny");
  await page.fill("#reference", "BV-2027-40");
  await page.fill("#child_given_name", "Ola");
  await page.fill("#child_initials", "O.N.");
  await page.fill("#child_birth_date", "2016-04-12");
  await page.check("#aimed_at_child-ja");
  await page.check("#measure_type-voluntary");
  await shot("41-ny-sak.png");
  await submit("form[action='/saker/ny'] button[type=submit]", (url) => url.pathname.endsWith("/kontakter"));
  caseUrl = pathOf().replace(/\/kontakter$/, "");
  obs.caseId = Number(caseUrl.split("/").pop());
  obs.newCaseNotice = await text(page.locator(".notice"));
});

// The child, the mother (daily care, she consents), the school and the public health nurse
// (no consent for health: nothing may reach her).
const PEOPLE = [
  { name: "Ola Nilsen", role: "child", email: "ola@elev.example.org" },
  { name: "Mona Nilsen", role: "parent", label: "mor", email: "mona@example.org", dailyCare: true },
  { name: "Nora Lærer", role: "school_contact", label: "kontaktlærer", email: "nora@skole.example.org",
    organisation: "Bakkeli skole" },
  { name: "Hanne Helse", role: "public_health_nurse", email: "hanne@helse.example.org",
    organisation: "Helsestasjonen" },
];
await step("contacts", async () => {
  for (const person of PEOPLE) {
    await submit("a:has-text('Legg til kontakt')", (url) => url.pathname.endsWith("/kontakter/ny"));
    await page.fill("#name", person.name);
    await page.selectOption("#role", person.role);
    if (person.label) await page.fill("#role_label", person.label);
    if (person.organisation) await page.fill("#organisation", person.organisation);
    await page.fill("#email", person.email);
    if (person.dailyCare) await page.check("#daily_care");
    if (person.role === "parent") await shot("42-kontakt-mor.png");
    await submit("form[action$='/kontakter/ny'] button[type=submit]", (url) => url.pathname.endsWith("/kontakter"));
  }
  obs.contactRows = await page.locator("table.contacts tbody tr").allInnerTexts();
  await shot("43-kontakter.png");
});

await step("consent", async () => {
  await submit("nav.tabs a:has-text('Samtykke')", (url) => url.pathname.endsWith("/samtykke"));
  await page.selectOption("#grantor", { label: "Mona Nilsen (mor)" });
  await page.selectOption("#sector", { label: "Skole" });
  await page.check("#status-granted");
  await page.selectOption("#level", { label: "Formål" });
  await page.check("#form-written");
  await page.fill("#note", "Mor samtykket skriftlig i møtet om vedtaket.");
  await shot("44-samtykke.png");
  await submit("form[action$='/samtykke'] button[type=submit]", (url) => url.pathname === caseUrl);
  obs.consentNotice = await text(page.locator(".notice"));
  obs.schoolLoop = await text(page.locator("table.matrix tbody tr", { hasText: "Nora Lærer" }));
  obs.nurseLoop = await text(page.locator("table.matrix tbody tr", { hasText: "Hanne Helse" }));
  await shot("45-sak-med-samtykke.png");
});

async function previewLines() {
  return page.locator("#meldinger tbody tr").evaluateAll((rows) => rows.map((row) => {
    const cells = row.querySelectorAll("td");
    const link = cells[1]?.querySelector("a");
    const clean = (el) => (el ? el.textContent.replace(/\s+/g, " ").trim() : "");
    return {
      kind: clean(cells[0]), recipient: clean(row.querySelector("th")),
      meeting: link ? Number(link.getAttribute("href").split("/").pop()) : 0,
      due: clean(cells[2]), verdict: clean(cells[3]?.querySelector(".badge")),
    };
  }));
}

async function meetingLines(id) {
  const table = page.locator(`#${id}`);
  if (!(await table.count())) return [];
  return table.locator("tbody tr").evaluateAll((rows) => rows.map((row) => {
    const link = row.querySelector("th a");
    return { text: row.textContent.replace(/\s+/g, " ").trim(),
      meeting: link ? Number(link.getAttribute("href").split("/").pop()) : 0 };
  }));
}

const PREVIEW = "form[action$='/plan'] button[value=forhandsvis]:not(.default-submit)";
await step("plan", async () => {
  await submit("nav.tabs a:has-text('Tiltaksplan')", (url) => url.pathname.endsWith("/plan"));
  await page.fill("#start_date", "2027-01-11");
  await page.fill("#expected_end", "2027-06-30");
  await page.fill("#goals", "Ola skal gå på skolen hver dag og ha det bra der.");
  await page.fill("#smart_goals-0-goal", "Skoleoppmøte");
  await page.fill("#smart_goals-0-indicator", "Dager på skolen");
  await page.fill("#smart_goals-0-level_now", "60 %");
  await page.fill("#smart_goals-0-target", "90 %");
  await page.fill("#smart_goals-0-deadline", "2027-03-15");
  await page.fill("#measures-0-what", "Miljøterapeut hjemme");
  await page.fill("#measures-0-how_often", "1 gang i uken, 60 min");
  await page.locator("#tiltak details summary").first().click();
  await page.locator("#measures-0-contact_ids").getByLabel(/Mona Nilsen/).check();
  await page.locator("#measures-0-contact_ids").getByLabel(/Ola Nilsen/).check();
  await page.selectOption("#measures-0-weekly-0-weekday", "1");
  await page.fill("#measures-0-weekly-0-start", "17:00");
  await page.fill("#measures-0-weekly-0-end", "18:00");
  await page.fill("#child_wishes-after_school", "14:00");
  await page.fill("#default_place", "Familiesenteret, Storgata 1");
  await shot("46-tiltaksplan.png");
  await page.click(PREVIEW);
  await page.waitForSelector("#forhandsvisning");
  obs.planPreview = await text(page.locator("#oppsummering"));
  obs.planPreviewAdded = await meetingLines("legges-til");
  obs.planPreviewMessages = await previewLines();
  await shot("47-forhandsvisning-ny-plan.png");
  await submit("button[value=lagre]", (url) => url.pathname.endsWith("/moter"));
  obs.planSaved = await text(page.locator(".notice"));
  await shot("48-moteplan-forslag.png");
});

// The start-up phase and the first quarter: every proposed meeting up to and including the
// first main evaluation, confirmed one by one from the top of the meeting plan.
await step("confirm", async () => {
  obs.confirmed = [];
  for (let i = 0; i < 15; i++) {
    const meeting = page.locator("li.meeting:has(form[action$='/bekreft'])").first();
    const kind = await text(meeting.locator("h3"));
    const id = Number((await meeting.getAttribute("id")).replace("mote-", ""));
    await submit(`#mote-${id} form[action$='/bekreft'] button`, (url) => url.search.includes("melding=bekreftet"));
    obs.confirmed.push({ id, kind });
    if (kind === "Evalueringsmøte") break;
  }
  obs.confirmedNotice = await text(page.locator(".notice"));
  await shot("49-moteplan-bekreftet.png");
});

await step("invitations sent", async () => {
  await untilSent(caseUrl, "Invitasjon");
  await page.goto(args.base + caseUrl + "/utsendinger");
  obs.outboxAfterConfirm = await page.locator("table.outbox tbody tr").allInnerTexts();
  await shot("50-utsendinger-invitasjoner.png");
  obs.mailBeforeRevision = mailFiles();
});

// The measure ends at the end of March: the April evaluation and its child talk, confirmed,
// have no place in the plan any longer; the preview says who is told, and what consent stops.
await step("revision", async () => {
  await page.goto(args.base + caseUrl + "/moter");
  await submit("a:has-text('Endre tiltaksplanen')", (url) => url.pathname.endsWith("/plan"));
  obs.revisionHeading = await text(page.locator("#plan-tittel"));
  await page.fill("#expected_end", "2027-03-31");
  await page.click(PREVIEW);
  await page.waitForSelector("#forhandsvisning");
  obs.revisionPreview = await text(page.locator("#oppsummering"));
  obs.revisionCancelled = await meetingLines("avlyses");
  obs.revisionMoved = await meetingLines("flyttes");
  obs.revisionMessages = await previewLines();
  await shot("51-forhandsvisning-revisjon.png");
  await submit("button[value=lagre]", (url) => url.pathname.endsWith("/moter"));
  obs.revisionSaved = await text(page.locator(".notice"));
  await shot("52-moteplan-revidert.png");
});

await step("cancellations sent", async () => {
  await untilSent(caseUrl, "Avlysning");
  await page.goto(args.base + caseUrl + "/utsendinger");
  obs.outboxAfterRevision = await page.locator("table.outbox tbody tr").allInnerTexts();
  await shot("53-utsendinger-avlysninger.png");
  obs.mailAfterRevision = mailFiles();
});

await browser.close();
process.stdout.write(JSON.stringify(out));
