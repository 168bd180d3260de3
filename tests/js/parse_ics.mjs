// Reads one iCalendar object from stdin and prints what ical.js (the parser
// Thunderbird uses) makes of it, as JSON, for tests/calendars/test_ical_agreement.py.
//
// Times are resolved only through the VTIMEZONEs in the file itself: ical.js ships
// no Olson database, so a TZID that the file does not define would silently be read
// as floating time. We refuse that instead, so a broken VTIMEZONE fails the test.
import ICAL from "ical.js";

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

function instant(time, prop) {
  if (time.isDate) {
    return { value: time.toString(), allDay: true };
  }
  const tzid = prop.getParameter("tzid");
  const zone = time.zone ? time.zone.tzid : null;
  if (tzid && zone !== tzid) {
    throw new Error(`TZID ${tzid} did not resolve (ical.js used ${zone})`);
  }
  if (!tzid && zone !== "UTC") {
    throw new Error(`floating time ${time.toString()} is not allowed`);
  }
  return { value: new Date(time.toUnixTime() * 1000).toISOString(), allDay: false };
}

const text = await readStdin();
const root = new ICAL.Component(ICAL.parse(text));
if (root.name !== "vcalendar") {
  throw new Error(`expected a VCALENDAR, got ${root.name}`);
}

ICAL.TimezoneService.reset();
const zones = [];
for (const vtimezone of root.getAllSubcomponents("vtimezone")) {
  const zone = new ICAL.Timezone(vtimezone);
  ICAL.TimezoneService.register(zone.tzid, zone);
  zones.push(zone.tzid);
}

const events = root.getAllSubcomponents("vevent").map((vevent) => {
  const event = new ICAL.Event(vevent);
  const start = instant(event.startDate, vevent.getFirstProperty("dtstart"));
  const end = instant(event.endDate, vevent.getFirstProperty("dtend"));
  return {
    uid: event.uid,
    start: start.value,
    end: end.value,
    allDay: start.allDay,
    status: vevent.getFirstPropertyValue("status"),
    summary: event.summary,
    location: event.location,
    description: event.description,
    sequence: event.sequence,
    attendees: event.attendees.length,
  };
});

process.stdout.write(
  JSON.stringify({
    method: root.getFirstPropertyValue("method"),
    calname: root.getFirstPropertyValue("x-wr-calname"),
    timezones: zones,
    events,
  }),
);
