// Drives Debian's Chromium through playwright-core against a running `samhandling serve --demo`,
// as a caseworker would: sign in, open the demo case, withdraw the school's consent, watch the
// information loops and the queued reminders change, move a meeting, make a calendar, answer
// an invitation as a parent. On every page it runs axe-core and walks the page with the Tab
// key. It asserts nothing itself: it prints one JSON object of what it saw, and
// tests/web/test_browser.py decides. Usage:
//   node browser_check.mjs '{"base": "...", "token": "...", "answerPath": "...", "chromium": "...", "artifacts": "..."}'
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "js", "package.json"));
const { chromium } = require("playwright-core");
const AXE = require.resolve("axe-core/axe.min.js");

const args = JSON.parse(process.argv[2]);
const out = { pages: [], observations: {}, screenshots: [], errors: [], focus: [] };
mkdirSync(args.artifacts, { recursive: true });

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
];
const browser = await chromium.launch({ executablePath: args.chromium, args: FLAGS, timeout: 60000 });

async function axe(page, name) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
    }));
  });
  out.pages.push({ name, url: new URL(page.url()).pathname, violations: result });
}

// Tab through the page and note every focused element without a visible focus indicator.
async function keyboardWalk(page, name, presses = 45) {
  await page.evaluate(() => { window.scrollTo(0, 0); document.activeElement?.blur(); });
  await page.mouse.click(1, 1);
  let reached = 0;
  const problems = [];
  for (let i = 0; i < presses; i++) {
    await page.keyboard.press("Tab");
    const info = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const style = getComputedStyle(el);
      const visible = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2)
        || (style.boxShadow && style.boxShadow !== "none");
      const label = (el.getAttribute("aria-label") || el.textContent || el.getAttribute("name") || el.id || "")
        .trim().replace(/\s+/g, " ").slice(0, 60);
      return { tag: el.tagName.toLowerCase(), label, visible, key: el.outerHTML.slice(0, 120) };
    });
    if (!info) break;
    reached += 1;
    if (!info.visible) problems.push(`${info.tag}: ${info.label}`);
  }
  out.focus.push({ name, reached, problems });
}

async function shot(page, file) {
  const target = path.join(args.artifacts, file);
  await page.screenshot({ path: target, fullPage: true });
  out.screenshots.push(file);
}

let stopped = false;
async function step(name, fn, critical = false) {
  if (stopped) {
    out.errors.push({ step: name, error: "not run: an earlier step that it needs failed" });
    return;
  }
  try {
    await fn();
  } catch (error) {
    out.errors.push({ step: name, error: String(error && error.message ? error.message : error).slice(0, 800) });
    stopped = critical;
    try {
      await page.screenshot({ path: path.join(args.artifacts, `fel-${name.replace(/\W+/g, "-")}.png`), fullPage: true });
    } catch {
      // best effort: the screenshot only helps to read the failure
    }
  }
}

// Our own Content-Security-Policy stays in force in the contexts below that do not inject axe.
const cspErrors = [];
function watchCsp(page) {
  page.on("console", (message) => {
    if (message.type() === "error" && message.text().includes("Content Security Policy")) {
      cspErrors.push(message.text().slice(0, 300));
    }
  });
}

const text = async (locator) => (await locator.innerText()).replace(/\s+/g, " ").trim();

// axe is injected as a script, which our CSP (rightly) forbids: this context bypasses it.
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "nb-NO", bypassCSP: true });
await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: args.base });
context.setDefaultTimeout(15000);
const page = await context.newPage();
const obs = out.observations;

await step("sign-in", async () => {
  await page.goto(args.base + "/");
  obs.signInUrl = new URL(page.url()).pathname;
  await page.keyboard.press("Tab");
  obs.firstTab = await page.evaluate(() => document.activeElement.textContent.trim());
  await page.keyboard.press("Enter");
  obs.afterSkipLink = await page.evaluate(() => document.activeElement.id);
  await axe(page, "sign-in");
  await shot(page, "01-logg-inn.png");
  await keyboardWalk(page, "sign-in", 10);
  await page.focus("#token");
  await page.keyboard.type(args.token);
  await page.keyboard.press("Enter");
  await page.waitForURL((url) => url.pathname === "/");
  obs.afterSignIn = new URL(page.url()).pathname;
}, true);

let caseUrl = "";
await step("my cases", async () => {
  await axe(page, "my cases");
  await keyboardWalk(page, "my cases");
  await shot(page, "02-mine-saker.png");
  const row = page.locator("table.cases tbody tr").first();
  obs.casesRow = await text(row);
  caseUrl = await row.locator("a").first().getAttribute("href");
}, true);

// Before anything moves a meeting: a move mails a fresh link and retires this one.
if (args.answerPath) {
  await step("answer page", async () => {
    const family = await browser.newContext({ viewport: { width: 420, height: 800 }, bypassCSP: true });
    const answer = await family.newPage();
    await answer.goto(args.base + args.answerPath);
    await axe(answer, "answer");
    await keyboardWalk(answer, "answer", 6);
    obs.answerPage = await text(answer.locator("main"));
    obs.answerLang = await answer.getAttribute("html", "lang");
    await shot(answer, "12-svar-pa-invitasjon.png");
    const broken = await answer.goto(args.base + "/answer/ikke-en-lenke");
    obs.brokenAnswerStatus = broken.status();
    await axe(answer, "answer: broken link");
    await answer.goBack();
    await answer.click("button[value=accepted]");
    await answer.waitForLoadState();
    obs.answerAfter = await text(answer.locator("main"));
    await family.close();
  });
}

await step("case overview", async () => {
  await page.goto(args.base + caseUrl);
  await axe(page, "case overview");
  await keyboardWalk(page, "case overview");
  const school = page.locator("table.matrix tbody tr", { hasText: "Siri Lærer" });
  obs.schoolLoopBefore = await text(school);
  await school.locator("summary").click();
  obs.schoolReasonBefore = await text(school.locator("details ul"));
  await shot(page, "03-sak-oversikt.png");
});

await step("outbox before", async () => {
  await page.goto(args.base + caseUrl + "/utsendinger?status=venter");
  const rows = page.locator("table.outbox tbody tr", { hasText: "Siri Lærer" }).filter({ hasText: "Påminnelse" });
  obs.schoolRemindersBefore = await rows.count();
  obs.schoolReminderBefore = obs.schoolRemindersBefore ? await text(rows.first()) : "";
});

await step("withdraw consent", async () => {
  await page.goto(args.base + caseUrl + "/samtykke");
  await axe(page, "consent");
  await keyboardWalk(page, "consent", 60);
  await page.selectOption("#grantor", { label: "Mona Hansen (mor)" });
  await page.selectOption("#sector", { label: "Skole" });
  await page.check("#status-withdrawn");
  await page.check("#form-oral");
  await page.fill("#note", "Mor ringte og trakk samtykket for skolen.");
  await shot(page, "04-samtykke-skjema.png");
  await page.click("form[action$='/samtykke'] button[type=submit]");
  await page.waitForURL((url) => url.pathname === caseUrl);
  obs.messageAfterWithdrawal = await text(page.locator(".notice"));
  const school = page.locator("table.matrix tbody tr", { hasText: "Siri Lærer" });
  obs.schoolLoopAfter = await text(school);
  await school.locator("summary").click();
  obs.schoolReasonAfter = await text(school.locator("details ul"));
  obs.alertsOnCase = await page.locator("section.panel-warn").count()
    ? await text(page.locator("section.panel-warn")) : "";
  obs.schoolContactConsent = await text(page.locator("section", { hasText: "Kontakter" })
    .locator("tbody tr", { hasText: "Siri Lærer" }));
  await shot(page, "05-sak-etter-tilbaketrekking.png");
  await page.goto(args.base + caseUrl + "/samtykke");
  obs.schoolCard = await text(page.locator("#sektor-school"));
  obs.latestConsent = await text(page.locator("#historikk tbody tr").first());
});

await step("outbox after", async () => {
  await page.goto(args.base + caseUrl + "/utsendinger?status=stoppet");
  await axe(page, "outbox");
  const rows = page.locator("table.outbox tbody tr", { hasText: "Siri Lærer" }).filter({ hasText: "Påminnelse" });
  obs.schoolRemindersStopped = await rows.count();
  obs.schoolReminderAfter = obs.schoolRemindersStopped ? await text(rows.first()) : "";
  await shot(page, "06-utsendinger-stoppet.png");
  await page.goto(args.base + caseUrl + "/utsendinger?status=venter");
  obs.schoolRemindersStillWaiting = await page.locator("table.outbox tbody tr", { hasText: "Siri Lærer" })
    .filter({ hasText: "Påminnelse" }).count();
  await page.goto(args.base + caseUrl + "/utsendinger");
  await keyboardWalk(page, "outbox");
});

let meetingUrl = "";
await step("schedule", async () => {
  await page.goto(args.base + caseUrl + "/moter");
  await axe(page, "schedule");
  await keyboardWalk(page, "schedule");
  await shot(page, "07-moteplan.png");
  const first = page.locator("li.meeting.status-confirmed:not(.past)").first();
  meetingUrl = await first.locator("h3 a").getAttribute("href");
  obs.meetingBefore = await text(first.locator("[data-when]"));
});

await step("move meeting", async () => {
  await page.goto(args.base + meetingUrl);
  await axe(page, "meeting");
  await keyboardWalk(page, "meeting", 60);
  const current = await page.inputValue("#dato");
  const day = new Date(current + "T12:00:00Z");
  day.setUTCDate(day.getUTCDate() + ((6 - day.getUTCDay() + 7) % 7 || 7)); // the next Saturday
  obs.askedDate = day.toISOString().slice(0, 10);
  await page.fill("#dato", obs.askedDate);
  await page.fill("#tid", "10:00");
  await page.click("form[action$='/flytt'] button:has-text('Flytt')");
  await page.waitForSelector("#slot-advice");
  obs.advice = await text(page.locator("#slot-advice"));
  await axe(page, "meeting: time does not fit");
  await shot(page, "08-flytt-passer-ikke.png");
  const alternative = page.locator("#slot-advice ul.alternatives form").first();
  obs.alternativeDate = await alternative.locator("input[name=dato]").inputValue();
  obs.alternativeTime = await alternative.locator("input[name=tid]").inputValue();
  await alternative.locator("button").click();
  await page.waitForURL((url) => url.pathname.endsWith("/moter"));
  obs.messageAfterMove = await text(page.locator(".notice"));
  const id = meetingUrl.split("/").pop();
  obs.meetingAfter = await text(page.locator(`#mote-${id} [data-when]`));
  await page.goto(args.base + meetingUrl);
  obs.movedDate = await page.inputValue("#dato");
  obs.movedTime = await page.inputValue("#tid");
});

await step("feeds", async () => {
  await page.goto(args.base + caseUrl + "/kalendere");
  await page.check("#scope-contact");
  await page.selectOption("#kontakt", { label: "Hanne Helsesykepleier (helsesykepleier)" });
  await page.fill("#label", "Helsesykepleier");
  await page.click("form[action$='/kalendere'] button[type=submit]");
  await page.waitForSelector("#ny-kalender");
  obs.feedPanel = await text(page.locator("section.panel-ok"));
  obs.feedLinks = await page.locator("ul.subscribe a").evaluateAll((as) => as.map((a) => a.href));
  obs.feedUrl = await page.inputValue("#feed-url");
  const copy = page.locator("button[data-copy]");
  obs.copyButtonVisible = await copy.isVisible();
  if (obs.copyButtonVisible) {
    await copy.click();
    await page.waitForFunction(() => document.querySelector("[data-copy-status]").textContent.length > 0);
    obs.copyStatus = await text(page.locator("[data-copy-status]"));
    obs.clipboard = await page.evaluate(() => navigator.clipboard.readText());
  }
  await axe(page, "feeds");
  await keyboardWalk(page, "feeds", 60);
  await shot(page, "09-kalendere.png");
  const feed = await page.request.get(obs.feedUrl);
  obs.feedStatus = feed.status();
  obs.feedBody = (await feed.text()).slice(0, 4000);
});

await step("log", async () => {
  await page.goto(args.base + caseUrl + "/logg");
  await axe(page, "log");
  await keyboardWalk(page, "log", 20);
  obs.sharedRows = await page.locator("section", { hasText: "Hva er delt med hvem" }).locator("tbody tr").count();
  obs.sharedFirst = obs.sharedRows ? await text(page.locator("section", { hasText: "Hva er delt med hvem" })
    .locator("tbody tr").first()) : "";
  await shot(page, "10-logg-og-innsyn.png");
});

await step("alerts", async () => {
  await page.goto(args.base + "/varsler");
  await axe(page, "alerts");
  await keyboardWalk(page, "alerts", 20);
  obs.alerts = await text(page.locator("main"));
  await shot(page, "11-varsler.png");
});

await step("not found", async () => {
  const response = await page.goto(args.base + "/saker/999999");
  obs.notFoundStatus = response.status();
  obs.notFound = await text(page.locator("main h1"));
  await axe(page, "not found");
});

// Setting a case up and the unit's pages (issue 14): a new case, its contacts, the leader's
// case list and attention list, the admin's users and settings; every state through axe.
const focusedClass = (p) => p.evaluate(() => (document.activeElement && document.activeElement.className) || "");
let newCaseUrl = "";
await step("new case", async () => {
  await page.goto(args.base + "/saker/ny");
  await axe(page, "new case");
  await keyboardWalk(page, "new case", 40);
  await shot(page, "20-ny-sak.png");
  await page.fill("#reference", "NY-2027-1");
  await page.fill("#child_given_name", "Ola");
  await page.fill("#child_initials", "O.N.");
  await page.fill("#child_birth_date", "2030-01-01");
  await page.check("#measure_type-voluntary");
  await page.click("form[action='/saker/ny'] button[type=submit]");
  await page.waitForSelector(".error-summary");
  obs.newCaseError = await text(page.locator(".error-summary"));
  obs.newCaseErrorLink = await page.locator(".error-summary a").first().getAttribute("href");
  obs.newCaseErrorFocus = await focusedClass(page);
  await axe(page, "new case: error");
  await shot(page, "21-ny-sak-feil.png");
  await page.fill("#child_birth_date", "2016-04-12");
  await page.click("form[action='/saker/ny'] button[type=submit]");
  await page.waitForURL((url) => url.pathname.endsWith("/kontakter"));
  newCaseUrl = new URL(page.url()).pathname.replace(/\/kontakter$/, "");
  obs.newCaseMessage = await text(page.locator(".notice"));
  await axe(page, "contacts: empty");
});

await step("contact form", async () => {
  await page.goto(args.base + newCaseUrl + "/kontakter/ny");
  await axe(page, "contact form");
  await keyboardWalk(page, "contact form", 70);
  await page.fill("#name", "Nora Nilsen");
  await page.selectOption("#role", "school_contact");
  await page.fill("#email", "nora@skole.example.org");
  await page.check("#daily_care");
  await page.selectOption("#availability-0-weekday", "0");
  await page.fill("#availability-0-start", "08:00");
  await page.fill("#availability-0-end", "15:00");
  await shot(page, "22-kontaktskjema.png");
  await page.click("form[action$='/kontakter/ny'] button[type=submit]");
  await page.waitForSelector(".error-summary");
  obs.contactError = await text(page.locator(".error-summary"));
  obs.contactErrorLink = await page.locator(".error-summary a").first().getAttribute("href");
  obs.contactErrorFocus = await focusedClass(page);
  obs.contactKeptEmail = await page.inputValue("#email");
  await axe(page, "contact form: error");
  await shot(page, "23-kontaktskjema-feil.png");
  await page.uncheck("#daily_care");
  await page.click("form[action$='/kontakter/ny'] button[type=submit]");
  await page.waitForURL((url) => url.pathname.endsWith("/kontakter"));
  obs.contactRow = await text(page.locator("table.contacts tbody tr", { hasText: "Nora Nilsen" }));
  await axe(page, "contacts");
  await keyboardWalk(page, "contacts", 30);
  await shot(page, "24-kontakter.png");
});

async function signedIn(token) {
  const other = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "nb-NO", bypassCSP: true });
  other.setDefaultTimeout(15000);
  const p = await other.newPage();
  await p.goto(args.base + "/logg-inn");
  await p.fill("#token", token);
  await p.click("form[action='/logg-inn'] button");
  await p.waitForURL((url) => url.pathname === "/");
  return [other, p];
}

if (args.leaderToken) {
  await step("leader pages", async () => {
    const [leader, p] = await signedIn(args.leaderToken);
    await p.goto(args.base + "/enhet/saker");
    await axe(p, "unit cases");
    await keyboardWalk(p, "unit cases", 30);
    await shot(p, "25-enhetens-saker.png");
    await p.fill("#sok", "ny-2027");
    await p.click("form[role=search] button");
    await p.waitForURL((url) => url.search.includes("sok="));
    obs.unitSearch = await text(p.locator("#treff"));
    obs.unitSearchRows = await p.locator("table.unit-cases tbody tr").allInnerTexts();
    await axe(p, "unit cases: search");
    await p.goto(args.base + "/enhet/oppfolging");
    await axe(p, "attention");
    await keyboardWalk(p, "attention", 30);
    await shot(p, "26-til-oppfolging.png");
    await p.goto(args.base + newCaseUrl + "/koordinatorer");
    await axe(p, "coordinators");
    await keyboardWalk(p, "coordinators", 30);
    await shot(p, "27-koordinatorer.png");
    await leader.close();
  });
}

if (args.adminToken) {
  await step("admin pages", async () => {
    const [admin, p] = await signedIn(args.adminToken);
    await p.goto(args.base + "/enhet/brukere");
    await axe(p, "users");
    await keyboardWalk(p, "users", 30);
    await p.fill("#name", "Nina Ny");
    await p.fill("#email", "nina@");
    await p.click("form[action='/enhet/brukere'] button[type=submit]");
    await p.waitForSelector(".error-summary");
    obs.userError = await text(p.locator(".error-summary"));
    await axe(p, "users: error");
    await p.fill("#email", "nina@kommune.example.org");
    await p.click("form[action='/enhet/brukere'] button[type=submit]");
    await p.waitForSelector("#ny-bruker");
    obs.userCreated = await text(p.locator("#ny-bruker"));
    await axe(p, "users: created");
    await shot(p, "28-brukere.png");
    await p.goto(args.base + "/enhet/innstillinger");
    await axe(p, "unit settings");
    await keyboardWalk(p, "unit settings", 30);
    await p.fill("#closures-0-first", "2027-07-05");
    await p.fill("#closures-0-last", "2027-07-01");
    await p.click("form[action='/enhet/innstillinger'] button[type=submit]");
    await p.waitForSelector(".error-summary");
    obs.settingsError = await text(p.locator(".error-summary"));
    await axe(p, "unit settings: error");
    await shot(p, "29-innstillinger-feil.png");
    await admin.close();
  });
}

// The plan and a meeting outside it (issue 14): the form, a refused field, the preview of a
// revision without the child talks (meetings cancelled, who is told, what consent stops), the
// save; rows added without JavaScript; a new meeting with the slot finder's advice.
await step("plan", async () => {
  await page.goto(args.base + caseUrl + "/plan");
  await axe(page, "plan form");
  await keyboardWalk(page, "plan form", 60);
  await shot(page, "30-tiltaksplan.png");
  const end = await page.inputValue("#expected_end");
  await page.fill("#expected_end", "");
  await page.click("form[action$='/plan'] button[value=forhandsvis]:not(.default-submit)");
  await page.waitForSelector(".error-summary");
  obs.planError = await text(page.locator(".error-summary"));
  obs.planErrorLink = await page.locator(".error-summary a").first().getAttribute("href");
  obs.planErrorFocus = await focusedClass(page);
  await axe(page, "plan form: error");
  await shot(page, "31-tiltaksplan-feil.png");
  // The child no longer takes part: the child talks go, the confirmed one too, and its invitees are told.
  await page.fill("#expected_end", end);
  await page.uncheck("#child_takes_part");
  await page.click("form[action$='/plan'] button[value=forhandsvis]:not(.default-submit)");
  await page.waitForSelector("#forhandsvisning");
  obs.planPreview = await text(page.locator("#oppsummering"));
  obs.planPreviewCancelled = await page.locator("#avlyses tbody tr").count();
  obs.planPreviewMessages = await page.locator("#meldinger tbody tr").count();
  await axe(page, "plan preview");
  await keyboardWalk(page, "plan preview", 40);
  await shot(page, "32-forhandsvisning.png");
  await page.click("form[action$='/plan'] button[value=lagre]");
  await page.waitForURL((url) => url.pathname.endsWith("/moter"));
  obs.planSaved = await text(page.locator(".notice"));
  // Without JavaScript a row is added by a button that shows the form again with one more.
  const plain = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
  const p = await plain.newPage();
  await p.goto(args.base + "/logg-inn");
  await p.fill("#token", args.token);
  await p.click("form[action='/logg-inn'] button");
  await p.waitForURL((url) => url.pathname === "/");
  await p.goto(args.base + caseUrl + "/plan");
  obs.noJsGoalRowsBefore = await p.locator("input[name$='-goal']").count();
  await p.click("button[value='legg-til:smart_goals']");
  await p.waitForLoadState();
  obs.noJsGoalRowsAfter = await p.locator("input[name$='-goal']").count();
  await plain.close();
});

await step("new meeting", async () => {
  await page.goto(args.base + caseUrl + "/moter/nytt");
  await axe(page, "new meeting");
  await keyboardWalk(page, "new meeting", 40);
  await page.click("form[action$='/moter/nytt'] button[value=finn]:not(.default-submit)");
  await page.waitForSelector(".error-summary");
  obs.newMeetingError = await text(page.locator(".error-summary"));
  await axe(page, "new meeting: error");
  await page.fill("#agenda", "Samtale om skolevegring");
  const boxes = page.locator("#participant_ids input[type=checkbox]");
  await boxes.nth(0).check();
  await boxes.nth(1).check();
  await page.click("form[action$='/moter/nytt'] button[value=finn]:not(.default-submit)");
  await page.waitForSelector("#slot-suggestion");
  obs.newMeetingAdvice = await text(page.locator("#slot-suggestion h2"));
  await axe(page, "new meeting: advice");
  await shot(page, "33-nytt-mote-forslag.png");
  await page.locator("#slot-suggestion form button").first().click();
  await page.waitForURL((url) => /\/moter\/\d+$/.test(url.pathname));
  obs.newMeetingCreated = await text(page.locator(".notice"));
  obs.newMeetingWhen = await text(page.locator("[data-when]").first());
});

await step("sign out", async () => {
  await page.goto(args.base + "/");
  await page.click("form.sign-out button");
  await page.waitForURL((url) => url.pathname === "/logg-inn");
  obs.afterSignOut = await text(page.locator(".notice"));
  const response = await page.goto(args.base + caseUrl);
  obs.caseAfterSignOut = new URL(page.url()).pathname;
  obs.cookiesAfterSignOut = (await context.cookies()).map((c) => c.name);
});

// The same forms without JavaScript: every change must still work.
await step("without javascript", async () => {
  const plain = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
  const p = await plain.newPage();
  watchCsp(p);
  await p.goto(args.base + "/logg-inn");
  await p.fill("#token", args.token);
  await p.click("form[action='/logg-inn'] button");
  await p.waitForURL((url) => url.pathname === "/");
  await p.goto(args.base + "/saker/ny");
  await p.click("form[action='/saker/ny'] button[type=submit]");
  await p.waitForSelector(".error-summary");
  obs.noJsErrorFocus = await p.evaluate(() => (document.activeElement && document.activeElement.className) || "");
  await p.goto(args.base + caseUrl + "/samtykke");
  await p.selectOption("#grantor", { label: "Mona Hansen (mor)" });
  await p.selectOption("#sector", { label: "Skole" });
  await p.check("#status-granted");
  await p.selectOption("#level", { label: "Formål" });
  await p.click("form[action$='/samtykke'] button[type=submit]");
  await p.waitForURL((url) => url.pathname === caseUrl);
  obs.noJsSchoolLoop = await text(p.locator("table.matrix tbody tr", { hasText: "Siri Lærer" }));
  await p.goto(args.base + meetingUrl);
  await p.click("form[action$='/forslag'] button");
  await p.waitForSelector("#slot-suggestion");
  obs.noJsSuggestion = await text(p.locator("#slot-suggestion h2"));
  const button = p.locator("#slot-suggestion form button");
  if (await button.count()) {
    obs.noJsSuggestedDate = await p.locator("#slot-suggestion input[name=dato]").first().inputValue();
    obs.noJsSuggestedTime = await p.locator("#slot-suggestion input[name=tid]").first().inputValue();
    await button.first().click();
    await p.waitForURL((url) => url.pathname.endsWith("/moter"));
    obs.noJsMessage = await text(p.locator(".notice"));
  }
  await plain.close();
});

// With JavaScript on and the CSP in force: our script and styles load without a violation.
await step("content security policy", async () => {
  const strict = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await strict.newPage();
  watchCsp(p);
  await p.goto(args.base + "/logg-inn");
  await p.fill("#token", args.token);
  await p.click("form[action='/logg-inn'] button");
  await p.waitForURL((url) => url.pathname === "/");
  for (const suffix of ["", "/samtykke", "/moter", "/kalendere", "/utsendinger", "/logg"]) {
    await p.goto(args.base + caseUrl + suffix);
  }
  obs.focusedOnLoad = await p.evaluate(() => document.activeElement && document.activeElement.tagName);
  await strict.close();
});
obs.cspErrors = cspErrors;

await browser.close();
process.stdout.write(JSON.stringify(out));
