package msi

import "testing"

func TestParseTable(t *testing.T) {
	const text = "ServiceControl\tName\tEvent\tArguments\tWait\tComponent_\r\n" +
		"s72\tl255\ti2\tL255\tI2\ts72\r\n" +
		"ServiceControl\tServiceControl\r\n" +
		"AgentService\tdeskside-agent\t163\t\t1\tAgent\r\n"
	tab, err := ParseTable(text)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Name != "ServiceControl" || len(tab.Rows) != 1 {
		t.Fatalf("table %q with %d rows", tab.Name, len(tab.Rows))
	}
	r := tab.Find("Name", "deskside-agent")
	if len(r) != 1 || r[0]["Event"] != "163" || r[0]["Arguments"] != "" || r[0]["Component_"] != "Agent" {
		t.Errorf("rows %v", r)
	}
	for name, bad := range map[string]string{
		"short":          "a\tb\n",
		"types mismatch": "a\tb\ns72\nT\ta\n",
		"row too short":  "a\tb\ns72\ts72\nT\ta\nonly\n",
	} {
		if _, err := ParseTable(bad); err == nil {
			t.Errorf("%s: parsed %q", name, bad)
		}
	}
}
