// Where the Keygrant provider runs. Change this line to point the example at
// another provider, or open the app with ?provider=https://keys.example.com
export const DEFAULT_PROVIDER = "http://127.0.0.1:8000";
