package apdu

// Instruction bytes (INS) of the commands GIDS uses, named once for both
// sides: the card's dispatch table (vcard/gids) and the host's command
// builders (minidriver). Values are ISO 7816-4 / 7816-8 / 7816-9 as GIDS
// v2.0 uses them; docs/reference/gids-protocol.md §2.2 has the table with
// the CLA/P1/P2 each side sends, and the section named on each line the
// command's details.
const (
	INSVerify                    byte = 0x20 // ISO 7816-4; docs/reference/gids-protocol.md §2.5
	INSManageSecurityEnvironment byte = 0x22 // ISO 7816-4; docs/reference/gids-protocol.md §2.8
	INSChangeReferenceData       byte = 0x24 // ISO 7816-4; docs/reference/gids-protocol.md §2.6
	INSPerformSecurityOperation  byte = 0x2A // ISO 7816-8; docs/reference/gids-protocol.md §2.11
	INSResetRetryCounter         byte = 0x2C // ISO 7816-4; docs/reference/gids-protocol.md §2.7
	INSActivateFile              byte = 0x44 // ISO 7816-9; docs/reference/gids-protocol.md §2.13
	INSGenerateAsymmetricKeyPair byte = 0x47 // ISO 7816-8; docs/reference/gids-protocol.md §2.10
	INSGeneralAuthenticate       byte = 0x87 // ISO 7816-4; docs/reference/gids-protocol.md §2.9
	INSSelect                    byte = 0xA4 // ISO 7816-4; docs/reference/gids-protocol.md §1.5
	INSGetResponse               byte = 0xC0 // ISO 7816-4 (61xx continuation); docs/reference/gids-protocol.md §2.1
	INSGetData                   byte = 0xCB // ISO 7816-4 (odd INS, BER tag list); docs/reference/gids-protocol.md §2.3
	INSPutData                   byte = 0xDB // ISO 7816-4 (odd INS); docs/reference/gids-protocol.md §2.4, §2.12
	INSCreateFile                byte = 0xE0 // ISO 7816-9; docs/reference/gids-protocol.md §2.13
	INSDeleteFile                byte = 0xE4 // ISO 7816-9; docs/reference/gids-protocol.md §2.13
	INSTerminateDF               byte = 0xE6 // ISO 7816-9
)

// CLAChaining is the command-chaining bit of an interindustry CLA
// (ISO 7816-4, command chaining): set on every APDU of a chain but the last.
const CLAChaining byte = 0x10
