package lenient

import (
	"encoding/json"
	"testing"
)

func TestBool(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    bool
		wantErr bool
	}{
		{"true", true, true, false},
		{"false", false, false, false},
		{"string true", "true", true, false},
		{"string TRUE", "TRUE", true, false},
		{"string on", "on", true, false},
		{"string yes", "yes", true, false},
		{"string y", "y", true, false},
		{"string 1", "1", true, false},
		{"string with spaces", "  on \t", true, false},
		{"string false", "false", false, false},
		{"string off", "off", false, false},
		{"string no", "no", false, false},
		{"string n", "n", false, false},
		{"string 0", "0", false, false},
		{"string No with spaces", " No ", false, false},
		{"empty string", "", false, false},
		{"blank string", "   ", false, false},
		{"int 1", 1, true, false},
		{"int 0", 0, false, false},
		{"int 2", 2, true, false},
		{"int64 1", int64(1), true, false},
		{"int64 0", int64(0), false, false},
		{"uint64 1", uint64(1), true, false},
		{"float64 1", 1.0, true, false},
		{"float64 0", 0.0, false, false},
		{"json.Number 1", json.Number("1"), true, false},
		{"json.Number 0", json.Number("0"), false, false},
		{"bad json.Number", json.Number("x"), false, true},
		{"other string", "maybe", false, true},
		{"numeric string other than 0 and 1", "2", false, true},
		{"nil", nil, false, true},
		{"list", []any{true}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Bool(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Bool(%#v) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if truthy := Truthy(tt.in); truthy != (tt.want && !tt.wantErr) {
				t.Errorf("Truthy(%#v) = %v", tt.in, truthy)
			}
		})
	}
}

func TestNumberAndInteger(t *testing.T) {
	tests := []struct {
		name       string
		in         any
		want       float64
		wantErr    bool
		integerErr bool // Integer refuses it (fractional)
	}{
		{"int", 20, 20, false, false},
		{"int64", int64(1 << 40), 1 << 40, false, false},
		{"uint64", uint64(7), 7, false, false},
		{"float64", 2.5, 2.5, false, true},
		{"whole float64", 10.0, 10, false, false},
		{"json.Number", json.Number("30"), 30, false, false},
		{"string", "20", 20, false, false},
		{"string with spaces", " 1.5 ", 1.5, false, true},
		{"negative string", "-3", -3, false, false},
		{"not a number", "abc", 0, true, true},
		{"empty string", "", 0, true, true},
		{"bool", true, 0, true, true},
		{"nil", nil, 0, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Number(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Number(%#v) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			n, err := Integer(tt.in)
			if (err != nil) != tt.integerErr || (err == nil && float64(n) != tt.want) {
				t.Errorf("Integer(%#v) = %v, %v; want %v, error %v", tt.in, n, err, tt.want, tt.integerErr)
			}
		})
	}
}
