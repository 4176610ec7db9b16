/// One configuration problem, printed as `<json-path>: <problem>` (`hosts[1].auth.keyFile: file not found`).
public struct ConfigProblem: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let problem: String

    public init(_ path: String, _ problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { path.isEmpty ? problem : "\(path): \(problem)" }
}

/// Every problem of a configuration at once (validation never stops at the first).
public struct ConfigErrors: Error {
    public var problems: [ConfigProblem]
    public init(_ problems: [ConfigProblem]) { self.problems = problems }
}
