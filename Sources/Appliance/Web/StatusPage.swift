/// `GET /`: the operator's status page, one self-contained document served from the binary. Its inline style and
/// script are allowed by hash in a strict Content-Security-Policy; every URL in it is relative, so it works behind
/// a reverse proxy under a path prefix.
public enum StatusPage {
    static let html = """
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sluice</title><style>\(StatusPageAssets.style)</style></head>
<body>
<header><h1>Sluice</h1><span class="where" id="where"></span><span class="spacer"></span>
<span class="who" id="who"></span><button id="logout" hidden>Sign out</button></header>
<main>
<section id="login" class="card login" hidden>
<h2>Sign in</h2>
<form id="login-form"><label for="username">User name</label><input id="username" autocomplete="username" required>
<label for="password">Password</label><input id="password" type="password" autocomplete="current-password" required>
<p><button class="primary" type="submit" id="sign-in">Sign in</button></p></form>
<form id="token-form"><label for="token">Or paste a token (from <code>sluice token</code>)</label>
<textarea id="token" spellcheck="false"></textarea><p><button type="submit">Use token</button></p></form>
<div class="error" id="login-error"></div>
</section>
<section id="app" hidden>
<div class="summary"><span class="pill"><span id="live" class="live"></span>live</span>
<span class="pill" id="count-up"></span><span class="pill" id="count-bad"></span><span class="pill" id="count-idle"></span></div>
<div class="card"><table><thead><tr><th>Tunnel</th><th>Status</th><th>Mode</th><th>Traffic</th><th>Conns</th>
<th>Since</th><th></th></tr></thead><tbody id="rows"></tbody></table></div>
</section>
</main>
<script>\(StatusPageAssets.script)</script>
</body></html>
"""

    /// Computed once: the CSP names the exact inline style and script by their SHA-256.
    static let securityHeaders: [(String, String)] = {
        let style = Base64.encode(Digest.sha256(Array(StatusPageAssets.style.utf8)))
        let script = Base64.encode(Digest.sha256(Array(StatusPageAssets.script.utf8)))
        return [
            ("Content-Security-Policy", "default-src 'none'; style-src 'sha256-\(style)'; script-src 'sha256-\(script)'; "
                + "connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
        ]
    }()

    static func response() -> HTTPResponse {
        HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: Array(html.utf8), headers: securityHeaders)
    }
}
