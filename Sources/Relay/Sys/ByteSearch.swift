/// Substring search over UTF-8 bytes, without allocating: Embedded Swift's String has none.
public enum ByteSearch {
    public static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        var i = 0
        while i + needle.count <= haystack.count {
            var j = 0
            while j < needle.count && haystack[i + j] == needle[j] { j += 1 }
            if j == needle.count { return true }
            i += 1
        }
        return false
    }

    public static func contains(_ text: String, _ needle: String) -> Bool {
        contains(Array(text.utf8), Array(needle.utf8))
    }
}
