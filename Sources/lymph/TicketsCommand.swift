import ArgumentParser
import Foundation
import Lymph

struct TicketsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tickets",
        abstract: "List, show and close maintenance tickets.",
        subcommands: [List.self, Show.self, Close.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tickets, sorted by due date.")

        enum StatusFilter: String, ExpressibleByArgument, CaseIterable { case open, done, cancelled, all }

        @OptionGroup var location: StateOptions
        @Option(help: "Which tickets.") var status: StatusFilter = .open
        @Option(help: "Only this equipment.") var equipment: String?
        @Option(help: "table (default on a terminal) or json (one ticket a line).") var format: OutputFormat?

        @OptionGroup var time: TimeZoneOptions
        func run() async throws {
            let tickets = try withStore(await location.open()) { store throws(StoreError) in
                try store.tickets(status: status == .all ? nil : Ticket.Status(rawValue: status.rawValue), equipment: equipment)
            }
            switch format ?? .automatic {
            case .json:
                for t in tickets { print(String(decoding: t.json(), as: UTF8.self)) }
            case .table:
                print(
                    renderTable(
                        ["TICKET", "DUE BY", "PRIORITY", "STATUS", "EQUIPMENT", "SOURCES", "ACTION"],
                        tickets.map {
                            [
                                $0.ticketID, time.zone.show($0.dueBy), $0.priority.description,
                                $0.status.rawValue, $0.equipmentID, String($0.sourceEventIDs.count), $0.action,
                            ]
                        }))
                print("\(tickets.count) ticket\(tickets.count == 1 ? "" : "s")")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one ticket with every source event.")
        @OptionGroup var location: StateOptions
        @Argument(help: "The ticket id (mt_...).") var id: String
        @Option(help: "table (default on a terminal) or json (the ticket as one line).") var format: OutputFormat?

        @OptionGroup var time: TimeZoneOptions
        func run() async throws {
            guard let t = try withStore(await location.open(), { store throws(StoreError) in try store.ticket(id: id) }) else {
                Console.error("lymph: no ticket '\(PrintableText.of(id.cutForMessage()))'")
                throw ExitCode(1)
            }
            switch format ?? .automatic {
            case .json: print(String(decoding: t.json(), as: UTF8.self))
            case .table: print(Self.details(t, time: time.zone))
            }
        }

        /// One field a line, then every source event on a line of its own.
        static func details(_ t: Ticket, time: TimeZoneOptions.Zone = .utc) -> String {
            var rows: [(String, String)] = [
                ("TICKET", t.ticketID), ("EQUIPMENT", t.equipmentID), ("ACTION", t.action), ("PRIORITY", t.priority.description),
                ("STATUS", t.status.rawValue), ("DUE BY", time.show(t.dueBy, seconds: true)), ("CREATED", time.show(t.createdAt, seconds: true)),
                ("UPDATED", time.show(t.updatedAt, seconds: true)),
            ]
            if let note = t.note { rows.append(("NOTE", note)) }
            for (i, source) in t.sourceEventIDs.enumerated() { rows.append((i == 0 ? "SOURCES" : "", source)) }
            let width = rows.map(\.0.count).max() ?? 0
            return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + PrintableText.of($0.1) }.joined(separator: "\n")
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a ticket done (or cancelled); the next request for the job opens a new ticket.")
        @OptionGroup var location: StateOptions
        @Argument(help: "The ticket id (mt_...).") var id: String
        @Flag(help: "Cancel instead of marking done.") var cancel = false
        @Option(help: "A note kept with the ticket.") var note: String?

        /// A ticket already done or cancelled is left as it is (its note too): that is said on
        /// stderr, exit 1, so neither a second close nor a cancel after a close passes unnoticed.
        func run() async throws {
            let now = Timestamp.now()
            guard
                let t = try await withStore(
                    location.open(writing: true),
                    { store throws(StoreError) in
                        try store.closeTicket(id: id, cancel: cancel, note: note, at: now)
                    })
            else {
                Console.error("lymph: no ticket '\(PrintableText.of(id.cutForMessage()))'")
                throw ExitCode(1)
            }
            // The store changes only an open ticket, stamping it with `now`; any other answer is
            // the ticket as an earlier close left it.
            guard t.status == (cancel ? .cancelled : .done), t.updatedAt == now else {
                Console.error("lymph: ticket \(t.ticketID) is already \(t.status.rawValue) (closed \(Timestamp.format(t.updatedAt))); nothing changed")
                throw ExitCode(1)
            }
            print("\(t.ticketID): \(t.status.rawValue)")
        }
    }
}
