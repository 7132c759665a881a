package input

import "strconv"

// codeKeysyms maps KeyboardEvent.code values (https://www.w3.org/TR/uievents-code/)
// to the X keysym the key carries, unshifted, on a US keyboard.
var codeKeysyms = buildCodeKeysyms()

func buildCodeKeysyms() map[string]uint32 {
	m := map[string]uint32{
		// Writing system keys.
		"Backquote":     0x0060, // grave
		"Minus":         0x002d,
		"Equal":         0x003d,
		"BracketLeft":   0x005b,
		"BracketRight":  0x005d,
		"Backslash":     0x005c,
		"Semicolon":     0x003b,
		"Quote":         0x0027, // apostrophe
		"Comma":         0x002c,
		"Period":        0x002e,
		"Slash":         0x002f,
		"IntlBackslash": 0x003c, // less, the extra key of ISO keyboards
		"IntlRo":        0x005c, // backslash (ro) on JIS keyboards
		"IntlYen":       0x00a5, // yen
		"Space":         0x0020,

		// Functional keys.
		"Enter":        0xff0d, // Return
		"Tab":          0xff09,
		"Backspace":    0xff08,
		"Escape":       0xff1b,
		"CapsLock":     0xffe5,
		"ShiftLeft":    0xffe1,
		"ShiftRight":   0xffe2,
		"ControlLeft":  0xffe3,
		"ControlRight": 0xffe4,
		"AltLeft":      0xffe9,
		"AltRight":     0xffea,
		"MetaLeft":     0xffeb, // Super_L
		"MetaRight":    0xffec, // Super_R
		"OSLeft":       0xffeb, // older Firefox name of MetaLeft
		"OSRight":      0xffec,
		"ContextMenu":  0xff67, // Menu
		"KanaMode":     0xff27, // Hiragana_Katakana
		"Convert":      0xff23, // Henkan
		"NonConvert":   0xff22, // Muhenkan
		"Lang1":        0xff31, // Hangul
		"Lang2":        0xff34, // Hangul_Hanja

		// Control pad and arrows.
		"Insert":     0xff63,
		"Delete":     0xffff,
		"Home":       0xff50,
		"End":        0xff57,
		"PageUp":     0xff55, // Prior
		"PageDown":   0xff56, // Next
		"Help":       0xff6a,
		"ArrowLeft":  0xff51,
		"ArrowUp":    0xff52,
		"ArrowRight": 0xff53,
		"ArrowDown":  0xff54,

		// Numpad.
		"NumLock":        0xff7f,
		"NumpadDivide":   0xffaf,
		"NumpadMultiply": 0xffaa,
		"NumpadSubtract": 0xffad,
		"NumpadAdd":      0xffab,
		"NumpadEnter":    0xff8d,
		"NumpadDecimal":  0xffae,
		"NumpadComma":    0xffac, // KP_Separator
		"NumpadEqual":    0xffbd,

		// Function section.
		"PrintScreen": 0xff61, // Print
		"ScrollLock":  0xff14,
		"Pause":       0xff13,

		// Media and browser keys (XF86 keysyms).
		"AudioVolumeMute":    0x1008ff12,
		"AudioVolumeDown":    0x1008ff11,
		"AudioVolumeUp":      0x1008ff13,
		"MediaPlayPause":     0x1008ff14,
		"MediaStop":          0x1008ff15,
		"MediaTrackPrevious": 0x1008ff16,
		"MediaTrackNext":     0x1008ff17,
		"BrowserHome":        0x1008ff18,
		"LaunchMail":         0x1008ff19,
		"BrowserSearch":      0x1008ff1b,
		"BrowserBack":        0x1008ff26,
		"BrowserForward":     0x1008ff27,
		"BrowserRefresh":     0x1008ff29,
		"BrowserFavorites":   0x1008ff30,
	}
	for c := 'A'; c <= 'Z'; c++ {
		m["Key"+string(c)] = uint32(c - 'A' + 'a')
	}
	for d := '0'; d <= '9'; d++ {
		m["Digit"+string(d)] = uint32(d)
		m["Numpad"+string(d)] = 0xffb0 + uint32(d-'0') // KP_0 … KP_9
	}
	for i := 1; i <= 24; i++ {
		m["F"+strconv.Itoa(i)] = 0xffbe + uint32(i-1) // F1 … F24
	}
	return m
}

// KeysymFor returns the X keysym of a KeyboardEvent.code on a US layout.
func KeysymFor(code string) (uint32, bool) {
	ks, ok := codeKeysyms[code]
	return ks, ok
}
