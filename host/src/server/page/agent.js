// A small user-agent reader for the details panel: the browser and the operating system,
// as a person would name them. Unknown agents give "".

const BROWSERS = [
  [/Edg(?:e|A|iOS)?\/(\d+)/, "Edge"],
  [/OPR\/(\d+)/, "Opera"],
  [/Firefox\/(\d+)/, "Firefox"],
  [/CriOS\/(\d+)/, "Chrome"],
  [/Chrome\/(\d+)/, "Chrome"],
  [/Version\/(\d+)[\d.]* (?:Mobile\/\S+ )?Safari\//, "Safari"],
  [/curl\/([\d.]+)/, "curl"],
  [/Go-http-client\/([\d.]+)/, "Go HTTP client"],
  [/coder\/v?([\d.]+)/i, "Coder CLI"],
];

const SYSTEMS = [
  [/Windows NT/, "Windows"],
  [/iPhone|iPad|iPod/, "iOS"],
  [/Android/, "Android"],
  [/CrOS/, "ChromeOS"],
  [/Mac OS X|Macintosh/, "macOS"],
  [/Linux/, "Linux"],
];

/** `{browser, os}` named from a User-Agent header. */
export function parseUserAgent(ua) {
  if (!ua) return { browser: "", os: "" };
  let browser = "";
  for (const [re, name] of BROWSERS) {
    const m = re.exec(ua);
    if (m) {
      browser = `${name} ${m[1]}`;
      break;
    }
  }
  const system = SYSTEMS.find(([re]) => re.test(ua));
  return { browser, os: system ? system[1] : "" };
}
