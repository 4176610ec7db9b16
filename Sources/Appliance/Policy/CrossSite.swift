/// Cross-site request rules for the routes a browser can reach with the session cookie (issue #15): `SameSite`
/// does not separate two ports of one host, so a page on another port could POST with the user's cookie. Pure:
/// decided from the request's headers.
public enum CrossSite {
    /// A request authenticated by the `jwt` cookie (which is what a foreign page can make a browser send).
    static func usesCookie(_ request: HTTPRequestHead) -> Bool {
        RequestAuth.token(cookie: request.header("Cookie"), authorization: nil) != nil
    }

    /// 403 when a cookie-authenticated request (or a login) carries an `Origin` that is neither the appliance's
    /// own nor in `allowedOrigins`. Requests without `Origin` (scripts, native clients) pass.
    static func originRefused(_ request: HTTPRequestHead, allowedOrigins: [String], login: Bool) -> Bool {
        guard login || usesCookie(request) else { return false }
        return !OriginPolicy.allows(origin: request.header("Origin"), host: request.header("Host"),
                                    allowed: allowedOrigins)
    }

    /// JSON routes take only `application/json` bodies (parameters such as `charset` allowed): an HTML form or a
    /// `text/plain` fetch cannot produce one without a CORS preflight. An empty body is left to the route.
    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let media = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first
            .map { String($0).trimmingSpaces().lowercasedASCII() } ?? ""
        return media == "application/json"
    }
}
