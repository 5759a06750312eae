import Foundation

/// `lymph test`'s work: find the test files under the paths given, load each (a broken one is
/// reported, and the others still run), run the tests whose names contain the filter, one after
/// another, and report.
public enum PipelineTestSuite {
    /// The suffix that makes a file a test file when a folder is searched.
    public static let suffix = ".test.yaml"

    /// The test files named or found (recursively, skipping folders whose names start with `.`)
    /// under `paths`, each once, in order; and the paths that name nothing.
    public static func testFiles(under paths: [String]) -> (files: [String], missing: [String]) {
        var files: [String] = []
        var missing: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isFolder: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isFolder) else {
                missing.append(path)
                continue
            }
            guard isFolder.boolValue else {
                files.append(path)
                continue
            }
            var found: [String] = []
            var folders = [path]
            while let folder = folders.popLast() {
                for name in (try? fm.contentsOfDirectory(atPath: folder)) ?? [] where !name.hasPrefix(".") {
                    let full = folder == "." ? name : (folder as NSString).appendingPathComponent(name)
                    var sub: ObjCBool = false
                    guard fm.fileExists(atPath: full, isDirectory: &sub) else { continue }
                    if sub.boolValue { folders.append(full) } else if name.hasSuffix(suffix) { found.append(full) }
                }
            }
            files += found.sorted()
        }
        var seen = Set<String>()
        return (files.filter { seen.insert($0).inserted }, missing)
    }

    /// Runs the tests of every test file under `paths` (the current folder when empty) whose
    /// names contain `filter` (all when nil). `problems` hears of the broken files once every file
    /// is read, before any test runs; `progress` hears each result as it comes.
    public static func run(
        paths: [String], filter: String? = nil, problems reportProblems: ([ConfigDiagnostic]) -> Void = { _ in },
        progress: (PipelineTestResult) -> Void = { _ in }
    ) async -> PipelineTestReport {
        var report = PipelineTestReport()
        let (files, missing) = testFiles(under: paths.isEmpty ? ["."] : paths)
        report.files = files
        report.missing = missing
        var loaded: [PipelineTestFile] = []
        for path in files {
            do {
                let file = try PipelineTestLoader.load(path: path)
                report.redactions += file.secretValues
                loaded.append(file)
            } catch {
                report.problems += error.diagnostics
                report.brokenFiles.append(path)
            }
        }
        if !report.problems.isEmpty { reportProblems(report.problems) }
        var selected = 0
        for file in loaded {
            for test in file.tests where filter.map({ test.name.contains($0) }) ?? true {
                selected += 1
                let result = await PipelineTestRun.run(test, in: file)
                progress(result)
                report.results.append(result)
            }
        }
        if files.isEmpty && missing.isEmpty {
            report.nothingToRun = "no test files (*\(suffix)) under \(paths.isEmpty ? "the current folder" : paths.joined(separator: ", "))"
        } else if selected == 0 && !loaded.isEmpty, let filter {
            report.nothingToRun = "no test's name contains '\(filter)'"
        }
        return report
    }
}
